import Dispatch
import Foundation
import SimjobBLAS
import SimjobKernels
import Synchronization

/// The work loop every blocked product shares, in the manner of FAISS's result handlers: the
/// driver owns the workers, their GEMM scratch, single-threaded BLAS inside Dispatch workers,
/// the work queue, cancellation per work item and progress; the caller's `body` turns each
/// tile's inner products into results through its own handler (top-k lists, range pairs).
///
/// Work items are taken in order from an atomic counter, so putting the largest first keeps the
/// last ones to finish small. Each worker runs `body(item, worker)`; `worker.tiles` cuts a pair of
/// chunks into `block x block` tiles, one sgemm each (or a reduced-precision product, with
/// `format`), into the worker's scratch.
enum BlockedJoin {
    /// One worker's share: its index (for per-worker results) and its GEMM scratch.
    struct Worker {
        let index: Int
        let block: Int
        let scratch: UnsafeMutablePointer<Float>
        /// The worker's reduced-precision products, when the run uses them (chunks prepared
        /// for the same format then multiply through it; see `ExactKNN.Chunk.tile`).
        var multiplier: ReducedGEMM? = nil

        /// Calls `body` with every tile of `rows` (local range `rowRange`) against `columns`
        /// (`columnRange`), `block x block` at most; with `upperTriangle`, column tiles start at
        /// the row tile's first row (a chunk against itself: each pair of blocks once).
        func tiles(
            _ rows: ExactKNN.Chunk, _ rowRange: Range<Int>, against columns: ExactKNN.Chunk, _ columnRange: Range<Int>,
            upperTriangle: Bool = false, _ body: (_ tile: TileScan.Tile, _ rowStart: Int, _ columnStart: Int) -> Void
        ) {
            for rowStart in stride(from: rowRange.lowerBound, to: rowRange.upperBound, by: block) {
                let firstColumn = upperTriangle ? max(rowStart, columnRange.lowerBound) : columnRange.lowerBound
                for columnStart in stride(from: firstColumn, to: columnRange.upperBound, by: block) {
                    let tile = rows.tile(rowStart..<min(rowStart + block, rowRange.upperBound), against: columns,
                                         columnStart..<min(columnStart + block, columnRange.upperBound), scratch: scratch,
                                         multiplier: multiplier)
                    body(tile, rowStart, columnStart)
                }
            }
        }

        /// One tile given by its ranges.
        func tile(_ rows: ExactKNN.Chunk, _ rowRange: Range<Int>, against columns: ExactKNN.Chunk, _ columnRange: Range<Int>) -> TileScan.Tile {
            rows.tile(rowRange, against: columns, columnRange, scratch: scratch, multiplier: multiplier)
        }
    }

    /// Runs `items` work items on `threads` workers with tiles of `block`. `weight(item)` advances
    /// `progress`; `stop()` ends the work early (besides cancellation, which is thrown after).
    /// `scratch(worker)`, when given, supplies each worker's GEMM buffer (`block x block`) instead
    /// of one allocated per call, and `multiplier(worker)` its reduced-precision products instead
    /// of ones made for `format`: engines that run many short rounds keep theirs.
    static func run(
        items: Int, threads: Int, block: Int = ExactKNNConfig.defaultBlock, progress: ProgressDisplay? = nil,
        weight: (Int) -> Int = { _ in 1 }, stop: () -> Bool = { false }, scratch provided: ((Int) -> UnsafeMutablePointer<Float>)? = nil,
        format: ReducedGEMM.Format? = nil, multiplier providedMultiplier: ((Int) -> ReducedGEMM?)? = nil,
        _ body: (_ item: Int, _ worker: Worker) -> Void
    ) throws {
        guard items > 0 else { return }
        BLASRuntime.setThreads(1)
        let next = Atomic<Int>(0)
        let workers = min(max(threads, 1), items)
        withoutActuallyEscaping(body) { body in
            withoutActuallyEscaping(weight) { weight in
                withoutActuallyEscaping(stop) { stop in
                    let shared = UnsafeSendable((body, weight, stop, provided, providedMultiplier))
                    DispatchQueue.concurrentPerform(iterations: workers) { index in
                        let (body, weight, stop, provided, providedMultiplier) = shared.value
                        let scratch = provided?(index) ?? UnsafeMutablePointer<Float>.allocate(capacity: block * block)
                        defer { if provided == nil { scratch.deallocate() } }
                        let multiplier = providedMultiplier.map { $0(index) } ?? format.flatMap { ReducedGEMM(format: $0) }
                        let worker = Worker(index: index, block: block, scratch: scratch, multiplier: multiplier)
                        while !Cancellation.isRequested && !stop() {
                            let item = next.add(1, ordering: .relaxed).oldValue
                            guard item < items else { break }
                            body(item, worker)
                            progress?.advance(by: weight(item))
                        }
                    }
                }
            }
        }
        try Cancellation.check()
    }
}
