import Dispatch
import Foundation
import Logging
import SimjobBLAS
import SimjobKernels
import Synchronization

/// Settings of the approximate k-NN graph (`knn-graph --method approx`).
public struct ApproxKNNConfig: Codable, Sendable, Equatable {
    /// Neighbours per row. Default 10.
    public var k: Int = 10
    /// Distance; nil takes the input file's `distance` attribute.
    public var metric: Metric? = nil
    /// k-means cells the set is split into; 0 picks n / 1000 (at least 1). Default 0.
    public var partitions: Int = 0
    /// Cells each row searches: its own and the nearest others. More cells, higher recall;
    /// `nprobe = partitions` is exact. Ignored when `recall` is set. Default 4.
    public var nprobe: Int = 4
    /// Rounds of neighbour-of-neighbour refinement after the cell search (NN-descent's local
    /// join): each row scores its neighbours' neighbours and its reverse neighbours'
    /// neighbours exactly. Ignored when `recall` is set. Default 1.
    public var rounds: Int = 1
    /// Target sampled recall (0-1): the engine picks nprobe and the rounds itself, measuring
    /// recall on `recall_sample` rows as it goes, and stops once the interval's lower end
    /// reaches the target. Nil uses `nprobe` and `rounds` as given. Default nil.
    public var recall: Double? = nil
    /// Rows whose exact neighbours measure the recall reported (seeded; 0 skips the measure
    /// unless `recall` is set, which needs at least 100). Default 1,000.
    public var recallSample: Int = 1_000
    /// Iterations of the partitioning k-means. Default 10.
    public var iterations: Int = 10
    /// Seed of the k-means. Default 1.
    public var seed: UInt64 = 1
    /// Worker threads; nil uses every core.
    public var threads: Int? = nil

    public init(k: Int = 10) { self.k = k }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case k, metric, partitions, nprobe, rounds, recall, recallSample = "recall_sample", iterations, seed, threads
    }
}

/// What the approximate graph did.
public struct ApproxKNNStats: Sendable {
    public var rows = 0
    public var k = 0
    public var partitions = 0
    public var nprobe = 0
    public var seconds = 0.0
    /// Pairs scored per row, against n - 1 for an exact graph.
    public var candidatesPerRow = 0.0
    /// Refinement rounds run.
    public var rounds = 0
    /// The target asked for, if any.
    public var recallTarget: Double?
    /// Recall measured on the sample at the end, if measured.
    public var sampledRecall: SampledRecall.Measure?

    /// One line: rows, k, cells, nprobe, rounds, time, candidates, sampled recall.
    public var summary: String {
        var text = String(format: "%d rows, k=%d, %d cells, nprobe=%d, %d rounds: %.2f s, %.0f candidates per row (exact: %d)",
                          rows, k, partitions, nprobe, rounds, seconds, candidatesPerRow, rows - 1)
        if let measured = sampledRecall {
            text += String(format: ", sampled recall %.4f [%.4f, %.4f] on %d rows", measured.recall, measured.low, measured.high, measured.rows)
        }
        if let target = recallTarget { text += String(format: " (target %.4g)", target) }
        return text
    }
}

/// An approximate all-pairs k-NN graph by inverted-file search of the set against itself.
///
/// A k-means splits the rows into cells. Every row searches the `nprobe` cells whose centroids
/// are nearest to it (its own among them), exactly: per cell, one sgemm of the rows probing it
/// against the cell's members, through the same fused scan as the exact engine, so distances
/// are exact and ties broken by id. A neighbour is missed only when it lies in a cell the row
/// did not probe. Work per row is about `nprobe x n / partitions` pairs instead of n.
public struct ApproxKNNGraph {
    public let config: ApproxKNNConfig
    public var logger: Logger?
    public var progressStyle: ProgressDisplay.Style = .silent

    public init(config: ApproxKNNConfig) { self.config = config }

    var threadCount: Int { max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount) }

    /// The graph of `vectors` (normalised already for angular).
    ///
    /// Three steps: the cell partition; each row's exact search of its `nprobe` nearest cells;
    /// refinement rounds. With a recall target, a sample of rows with exact neighbours guides
    /// them: nprobe starts where the cells alone are estimated to give the target less 0.05,
    /// rounds follow while they gain, and nprobe doubles when they stop gaining.
    public func graph(_ vectors: FloatMatrix, metric: Metric) throws -> (NeighborTable, ApproxKNNStats) {
        let started = ProgressDisplay.now()
        let n = vectors.rows
        guard config.k >= 1, config.k <= n - 1 else {
            throw SimjobError("k = \(config.k) must be between 1 and n - 1 = \(n - 1) (a row is not its own neighbour)")
        }
        guard config.nprobe >= 1 else { throw SimjobError("nprobe must be at least 1") }
        if let target = config.recall, !(target > 0 && target <= 1) { throw SimjobError("recall must be in (0, 1] (got \(target))") }
        let partitions = max(1, min(config.partitions > 0 ? config.partitions : n / 1000, n))

        var cellConfig = CellPartition.Config(cells: partitions, width: config.recall != nil ? 64 : config.nprobe)
        cellConfig.iterations = config.iterations
        cellConfig.seed = config.seed
        cellConfig.threads = config.threads
        cellConfig.label = "graph partitions"
        let cells = try CellPartition(vectors, config: cellConfig, logger: logger)
        let sampleSize = config.recall != nil ? max(config.recallSample, 100) : config.recallSample
        let sample = sampleSize > 0 ? try SampledRecall(vectors, metric: metric, k: config.k, size: sampleSize, seed: config.seed, threads: config.threads) : nil

        let lists = NeighborLists(rows: n, k: config.k)
        // Refinement visits rows cell by cell: rows of one cell share most candidates, which
        // then stay in cache (in row order every candidate is a fresh read from memory).
        let order = cells.members.flatMap { $0 }
        var stats = ApproxKNNStats()
        stats.rows = n
        stats.k = config.k
        stats.partitions = partitions
        stats.recallTarget = config.recall
        var scored = 0
        if let target = config.recall, let sample {
            // At least two cells: with one, every list stays inside its cell and rounds add nothing.
            var nprobe = min(2, cells.width)
            while nprobe < cells.width && sample.estimate(cells, nprobe: nprobe) < target - 0.05 { nprobe += 1 }
            scored += try searchCells(vectors, metric: metric, cells: cells, slots: 0..<nprobe, into: lists)
            var measured = sample.measure(lists)
            var gain = 1.0
            while measured.low < target {
                if gain >= 0.002 && stats.rounds < 8 {
                    scored += try refine(vectors, metric: metric, lists: lists, order: order)
                    stats.rounds += 1
                } else if nprobe < cells.width {
                    let wider = min(nprobe * 2, cells.width)
                    scored += try searchCells(vectors, metric: metric, cells: cells, slots: nprobe..<wider, into: lists)
                    nprobe = wider
                } else {
                    break
                }
                let next = sample.measure(lists)
                gain = next.recall - measured.recall
                measured = next
                logger?.info("approximate graph: nprobe \(nprobe), \(stats.rounds) rounds: sampled recall \(String(format: "%.4f", measured.recall))")
            }
            if measured.low < target {
                logger?.warning("approximate graph: sampled recall \(String(format: "%.4f", measured.recall)) stays below the target \(target) at nprobe \(nprobe) (of \(cells.width) ranked cells)")
            }
            stats.nprobe = nprobe
            stats.sampledRecall = measured
        } else {
            let nprobe = min(config.nprobe, partitions)
            scored += try searchCells(vectors, metric: metric, cells: cells, slots: 0..<nprobe, into: lists)
            for _ in 0..<config.rounds {
                scored += try refine(vectors, metric: metric, lists: lists, order: order)
                stats.rounds += 1
            }
            stats.nprobe = nprobe
            stats.sampledRecall = sample?.measure(lists)
        }
        stats.candidatesPerRow = Double(scored) / Double(n)
        let table = NeighborTable(converting: lists, metric: metric)
        Invariants.check(table, idLimit: n, selfJoin: true, what: "approximate k-NN graph")
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }

    /// Each row searches the cells at ranks `slots` among its nearest, exactly: per cell one
    /// sgemm of the rows probing it against its members, through the exact engine's fused scan.
    /// Cells are independent work items; each worker keeps its own lists (a row is reached from
    /// several cells), merged into `target` at the end without repeating an id already there.
    /// Returns the pairs scored.
    func searchCells(_ vectors: FloatMatrix, metric: Metric, cells: CellPartition, slots: Range<Int>, into target: NeighborLists) throws -> Int {
        let n = vectors.rows
        let members = cells.members, probers = cells.probers(slots: slots)
        let all = ExactKNN.Chunk(vectors: vectors, start: 0)
        let workers = (0..<threadCount).map { _ in NeighborLists(rows: n, k: config.k) }
        defer { workers.forEach { $0.deallocate() } }
        let work = (0..<cells.cells).map { probers[$0].count * members[$0].count }
        let total = work.reduce(0, +)
        let order = (0..<cells.cells).sorted { work[$0] > work[$1] }
        let progress = ProgressDisplay("approximate k-NN graph", total: total, unit: "rows",
                                       scale: Double(total) / Double(n), style: progressStyle, logger: logger)
        try BlockedJoin.run(items: order.count, threads: workers.count, progress: progress, weight: { work[order[$0]] }) { position, worker in
            let cell = order[position]
            let columnIDs = members[cell], rowIDs = probers[cell]
            guard !columnIDs.isEmpty, !rowIDs.isEmpty else { return }
            let lists = workers[worker.index]
            let columns = ExactKNN.Chunk(gathering: columnIDs, from: all), rows = ExactKNN.Chunk(gathering: rowIDs, from: all)
            rowIDs.withUnsafeBufferPointer { rowBuffer in
                columnIDs.withUnsafeBufferPointer { columnBuffer in
                    worker.tiles(rows, 0..<rowIDs.count, against: columns, 0..<columnIDs.count) { tile, rowStart, columnStart in
                        TileScan.scanGathered(tile, metric: metric, rowIDs: rowBuffer.baseAddress! + rowStart,
                                              columnIDs: columnBuffer.baseAddress! + columnStart, lists: lists)
                    }
                }
            }
        }
        progress.finish()
        try Cancellation.check()
        let starts = Array(stride(from: 0, to: n, by: 4096))
        DispatchQueue.concurrentPerform(iterations: starts.count) { index in
            let range = starts[index]..<min(starts[index] + 4096, n)
            for lists in workers { target.merge(lists, rows: range, skippingHeld: true) }
        }
        return total
    }

    /// One round of neighbour-of-neighbour refinement: every row scores, exactly, the
    /// neighbours of its neighbours and of its reverse neighbours (at most k of those) that it
    /// does not list yet. Rows are independent: each reads the lists as they were before the
    /// round and writes only its own. Rows are visited in `order` (every row once). Returns the
    /// pairs scored.
    func refine(_ vectors: FloatMatrix, metric: Metric, lists: NeighborLists, order: [Int32]) throws -> Int {
        let n = vectors.rows, k = lists.k, d = vectors.columns
        let before = [Int32](UnsafeBufferPointer(start: lists.ids, count: n * k))
        // Reverse neighbours, at most k per row (the first rows to list it).
        var reverseCount = [Int32](repeating: 0, count: n)
        var reverse = [Int32](repeating: -1, count: n * k)
        for row in 0..<n {
            for slot in 0..<k {
                let id = before[row * k + slot]
                guard id != NeighborLists.emptyID else { break }
                let count = Int(reverseCount[Int(id)])
                if count < k {
                    reverse[Int(id) * k + count] = Int32(row)
                    reverseCount[Int(id)] += 1
                }
            }
        }
        let blockRows = 512
        let blocks = (n + blockRows - 1) / blockRows
        let threads = min(threadCount, blocks)
        // Per worker: the row that last saw each id (so each candidate is scored once per row).
        let seen = UnsafeMutablePointer<Int32>.allocate(capacity: threads * n)
        seen.initialize(repeating: -1, count: threads * n)
        var scored = [Int](repeating: 0, count: threads)
        defer { seen.deallocate() }
        let progress = ProgressDisplay("refinement", total: n, unit: "rows", style: progressStyle, logger: logger)
        try order.withUnsafeBufferPointer { orderBuffer in
            try before.withUnsafeBufferPointer { before in
                try reverse.withUnsafeBufferPointer { reverse in
                    try scored.withUnsafeMutableBufferPointer { scoredBuffer in
                        let shared = UnsafeSendable((before.baseAddress!, reverse.baseAddress!, scoredBuffer.baseAddress!, orderBuffer.baseAddress!))
                        try BlockedJoin.run(items: blocks, threads: threads, progress: progress, weight: { min(blockRows, n - $0 * blockRows) }) { block, worker in
                            let (before, reverse, scoredCounts, order) = shared.value
                            let stamp = seen + worker.index * n
                            var count = 0
                            for position in (block * blockRows)..<min((block + 1) * blockRows, n) {
                                let row = Int(order[position])
                                let me = Int32(row)
                                stamp[row] = me
                                for slot in 0..<k where before[row * k + slot] != NeighborLists.emptyID { stamp[Int(before[row * k + slot])] = me }
                                let x = vectors.row(row)
                                for side in 0..<2 {
                                    let via = side == 0 ? before + row * k : reverse + row * k
                                    for slot in 0..<k {
                                        let u = via[slot]
                                        guard u != NeighborLists.emptyID, u >= 0 else { break }
                                        let theirs = before + Int(u) * k
                                        for other in 0..<k {
                                            let v = theirs[other]
                                            guard v != NeighborLists.emptyID else { break }
                                            if stamp[Int(v)] == me { continue }
                                            stamp[Int(v)] = me
                                            count += 1
                                            let score = metric.exactScore(x, vectors.row(Int(v)), dimension: d)
                                            if score <= lists.bounds[row] { lists.insert(row: row, score: score, id: v) }
                                        }
                                    }
                                }
                            }
                            scoredCounts[worker.index] += count
                        }
                    }
                }
            }
        }
        progress.finish()
        return scored.reduce(0, +)
    }
}
