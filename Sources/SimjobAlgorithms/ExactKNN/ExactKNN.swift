import Dispatch
import Foundation
import SimjobBLAS
import SimjobKernels
import Synchronization

/// The exact k-NN engine: blocked GEMM with a fused top-k scan.
///
/// The work is a grid of tiles. Each tile's inner products come from one single-threaded
/// `sgemm` (rows of one set times columns of another); `TileScan` turns them into scores and
/// feeds the bounded, sorted neighbour lists (`NeighborLists`). Workers (Dispatch, one per
/// thread) pull tiles from a shared counter; each has its own complete set of lists, so no
/// locks are taken, and the lists are merged at the end. The merged result does not depend on
/// the number of threads: lists order candidates by (score, id), a total order.
///
/// Self-joins (the k-NN graph) are symmetric: d(i, j) = d(j, i). With `symmetric` on, only
/// tiles on or above the diagonal are computed, each pair once, and each score is offered to
/// both rows' lists: half the GEMM work of searching the set against itself.
///
/// Vectors too large for `memoryLimit` are streamed: the base is read in chunks, each chunk
/// pair is processed in turn, and only the lists stay resident.
public struct ExactKNN {
    public let config: ExactKNNConfig
    public var progressStyle: ProgressDisplay.Style = .automatic

    public init(config: ExactKNNConfig) {
        self.config = config
    }

    public var threadCount: Int {
        max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    var memoryLimit: Int {
        config.memoryLimit ?? ProcessMemory.physicalBytes / 2
    }

    // MARK: entry points

    /// The k nearest rows of `base` for every row of `queries` (ground truth).
    public func search(queries: VectorSource, base: VectorSource, metric: Metric) throws -> (NeighborTable, ExactKNNStats) {
        guard queries.dimension == base.dimension else {
            throw SimjobError("\(queries.reference) has dimension \(queries.dimension) but \(base.reference) has \(base.dimension)")
        }
        try validateK(rows: base.rows, selfJoin: false, source: base)
        let queryChunk = try Chunk(source: queries, range: 0..<queries.rows, metric: metric)
        return try run(rows: queryChunk, base: base, metric: metric, selfJoin: false)
    }

    /// The k nearest other rows of every row of `source` (the k-NN graph, self excluded).
    public func graph(_ source: VectorSource, metric: Metric) throws -> (NeighborTable, ExactKNNStats) {
        try validateK(rows: source.rows, selfJoin: true, source: source)
        return try run(rows: nil, base: source, metric: metric, selfJoin: true)
    }

    /// In-memory variants, for callers that already hold the vectors (and for tests).
    public func search(queries: FloatMatrix, base: FloatMatrix, metric: Metric) throws -> (NeighborTable, ExactKNNStats) {
        precondition(queries.columns == base.columns)
        guard config.k >= 1, config.k <= base.rows else {
            throw SimjobError("k = \(config.k) must be between 1 and the \(base.rows) base rows")
        }
        let rows = Chunk(copying: queries, start: 0, metric: metric)
        let columns = Chunk(copying: base, start: 0, metric: metric)
        return try runInMemory(rows: rows, columns: columns, metric: metric, selfJoin: false)
    }

    public func graph(_ vectors: FloatMatrix, metric: Metric) throws -> (NeighborTable, ExactKNNStats) {
        guard config.k >= 1, config.k <= vectors.rows - 1 else {
            throw SimjobError("k = \(config.k) must be between 1 and n - 1 = \(vectors.rows - 1) (a row is not its own neighbour)")
        }
        let all = Chunk(copying: vectors, start: 0, metric: metric)
        return try runInMemory(rows: all, columns: all, metric: metric, selfJoin: true)
    }

    func validateK(rows: Int, selfJoin: Bool, source: VectorSource) throws {
        guard config.k >= 1 else { throw SimjobError("k must be at least 1 (got \(config.k))") }
        if selfJoin && config.k > rows - 1 {
            throw SimjobError("k = \(config.k) is larger than n - 1 = \(rows - 1) for \(source.reference) (a row is not its own neighbour)")
        }
        if !selfJoin && config.k > rows {
            throw SimjobError("k = \(config.k) is larger than the \(rows) rows of \(source.reference)")
        }
    }

    // MARK: planning

    /// A block of vectors held in memory: rows `start ..< start + count` of a set, normalised
    /// for angular, with their squared norms.
    final class Chunk: @unchecked Sendable {
        let start: Int
        let vectors: FloatMatrix
        let norms: UnsafeMutablePointer<Float>
        var count: Int { vectors.rows }
        var range: Range<Int> { start..<(start + count) }

        init(vectors: FloatMatrix, start: Int) {
            self.start = start
            self.vectors = vectors
            norms = .allocate(capacity: max(vectors.rows, 1))
            VectorKernels.squaredNorms(vectors.pointer, rows: vectors.rows, dimension: vectors.columns, into: norms)
        }

        convenience init(source: VectorSource, range: Range<Int>, metric: Metric) throws {
            try self.init(vectors: source.readMatrix(range, metric: metric), start: range.lowerBound)
        }

        convenience init(copying matrix: FloatMatrix, start: Int, metric: Metric) {
            let copy = FloatMatrix(rows: matrix.rows, columns: matrix.columns)
            copy.pointer.update(from: matrix.pointer, count: matrix.rows * matrix.columns)
            if metric.normalizesVectors {
                VectorKernels.normalizeRows(copy.pointer, rows: copy.rows, dimension: copy.columns)
            }
            self.init(vectors: copy, start: start)
        }

        deinit { norms.deallocate() }
    }

    /// One tile: local offsets into the row chunk and the column chunk.
    struct TileSpec {
        var row: Int, rowCount: Int, column: Int, columnCount: Int
    }

    /// The tiles of a chunk pair. With `upperTriangle`, tiles holding no pair j > i are left out.
    func tiles(rows: Chunk, columns: Chunk, upperTriangle: Bool) -> [TileSpec] {
        var result: [TileSpec] = []
        var row = 0
        while row < rows.count {
            let rowCount = min(config.rowBlock, rows.count - row)
            var column = 0
            while column < columns.count {
                let columnCount = min(config.columnBlock, columns.count - column)
                let lastColumn = columns.start + column + columnCount - 1
                if !upperTriangle || lastColumn > rows.start + row {
                    result.append(TileSpec(row: row, rowCount: rowCount, column: column, columnCount: columnCount))
                }
                column += columnCount
            }
            row += rowCount
        }
        return result
    }

    // MARK: running

    /// Per-worker state: its lists and its tile buffer.
    final class Worker: @unchecked Sendable {
        let lists: NeighborLists
        let scratch: UnsafeMutablePointer<Float>
        init(rows: Int, k: Int, tileElements: Int) {
            lists = NeighborLists(rows: rows, k: k)
            scratch = .allocate(capacity: tileElements)
        }
        deinit {
            lists.deallocate()
            scratch.deallocate()
        }
    }

    func makeWorkers(listRows: Int, dimension: Int) -> [Worker] {
        BLASRuntime.setThreads(1)
        return (0..<threadCount).map { _ in
            Worker(rows: listRows, k: config.k, tileElements: config.rowBlock * config.columnBlock)
        }
    }

    func runInMemory(rows: Chunk, columns: Chunk, metric: Metric, selfJoin: Bool) throws -> (NeighborTable, ExactKNNStats) {
        let started = ProgressDisplay.now()
        var stats = makeStats(rows: rows.count, baseRows: columns.count, dimension: rows.vectors.columns, metric: metric, selfJoin: selfJoin)
        let workers = makeWorkers(listRows: rows.count, dimension: rows.vectors.columns)
        let pairs = pairKind(selfJoin: selfJoin)
        let tiles = self.tiles(rows: rows, columns: columns, upperTriangle: pairs == .upperTriangle)
        let progress = ProgressDisplay(selfJoin ? "k-NN graph" : "exact search", total: tiles.count, unit: "tiles", style: progressStyle)
        try process(tiles, rows: rows, columns: columns, metric: metric, pairs: pairs, workers: workers, progress: progress, stats: &stats)
        progress.finish()
        stats.chunkLoads = 1
        let table = finish(workers: workers, metric: metric)
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }

    func pairKind(selfJoin: Bool) -> TileScan.Pairs {
        selfJoin ? (config.symmetric ? .upperTriangle : .allButSelf) : .all
    }

    func makeStats(rows: Int, baseRows: Int, dimension: Int, metric: Metric, selfJoin: Bool) -> ExactKNNStats {
        var stats = ExactKNNStats()
        stats.rows = rows
        stats.baseRows = baseRows
        stats.dimension = dimension
        stats.k = config.k
        stats.metric = metric
        stats.threads = threadCount
        stats.symmetric = selfJoin && config.symmetric
        return stats
    }

    /// Runs over a base read from a file: whole when it fits in `memoryLimit`, else by chunks.
    /// `rows` is nil for a self-join (the rows are the base's own chunks).
    func run(rows queryChunk: Chunk?, base: VectorSource, metric: Metric, selfJoin: Bool) throws -> (NeighborTable, ExactKNNStats) {
        let started = ProgressDisplay.now()
        let n = base.rows
        let d = base.dimension
        var stats = makeStats(rows: queryChunk?.count ?? n, baseRows: n, dimension: d, metric: metric, selfJoin: selfJoin)
        let pairs = pairKind(selfJoin: selfJoin)

        // Resident vectors: the query chunk plus, for self-joins, two base chunks at once.
        let queryBytes = queryChunk.map { $0.count * d * 4 } ?? 0
        let available = max(memoryLimit - queryBytes, 0)
        let residentChunks = selfJoin ? 2 : 1
        var chunkRows = n
        if base.floatBytes * (selfJoin ? 1 : 1) > available {
            chunkRows = max(config.columnBlock, available / residentChunks / (d * 4))
            chunkRows = min(chunkRows, n)
        }
        let chunkStarts = Array(stride(from: 0, to: n, by: chunkRows))
        stats.streamed = chunkStarts.count > 1

        // Plan every chunk pair first so progress knows the total.
        func chunkRange(_ index: Int) -> Range<Int> { chunkStarts[index]..<min(chunkStarts[index] + chunkRows, n) }
        var plan: [(Int, Int)] = []
        if selfJoin {
            for p in chunkStarts.indices {
                for q in chunkStarts.indices where !config.symmetric || q >= p { plan.append((p, q)) }
            }
        } else {
            plan = chunkStarts.indices.map { (0, $0) }
        }
        func tileCount(_ p: Int, _ q: Int) -> Int {
            let rowCount = selfJoin ? chunkRange(p).count : queryChunk!.count
            let rowStart = selfJoin ? chunkRange(p).lowerBound : 0
            let columns = chunkRange(q)
            var count = 0
            var row = 0
            while row < rowCount {
                var column = 0
                while column < columns.count {
                    let columnCount = min(config.columnBlock, columns.count - column)
                    if pairs != .upperTriangle || columns.lowerBound + column + columnCount - 1 > rowStart + row { count += 1 }
                    column += columnCount
                }
                row += min(config.rowBlock, rowCount - row)
            }
            return count
        }
        let totalTiles = plan.reduce(0) { $0 + tileCount($1.0, $1.1) }
        let progress = ProgressDisplay(selfJoin ? "k-NN graph" : "exact search", total: totalTiles, unit: "tiles", style: progressStyle)

        let workers = makeWorkers(listRows: stats.rows, dimension: d)
        var resident: (index: Int, chunk: Chunk)? = nil
        for (p, q) in plan {
            try Cancellation.check()
            let rowChunk: Chunk
            if let queryChunk {
                rowChunk = queryChunk
            } else if let current = resident, current.index == p {
                rowChunk = current.chunk
            } else {
                rowChunk = try Chunk(source: base, range: chunkRange(p), metric: metric)
                resident = (p, rowChunk)
                stats.chunkLoads += 1
            }
            let columnChunk: Chunk
            if selfJoin && q == p {
                columnChunk = rowChunk
            } else {
                columnChunk = try Chunk(source: base, range: chunkRange(q), metric: metric)
                stats.chunkLoads += 1
            }
            let tiles = self.tiles(rows: rowChunk, columns: columnChunk, upperTriangle: pairs == .upperTriangle)
            try process(tiles, rows: rowChunk, columns: columnChunk, metric: metric, pairs: pairs, workers: workers, progress: progress, stats: &stats)
        }
        progress.finish()
        let table = finish(workers: workers, metric: metric)
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }

    /// Runs the tiles of one chunk pair on every worker.
    func process(
        _ tiles: [TileSpec], rows: Chunk, columns: Chunk, metric: Metric, pairs: TileScan.Pairs,
        workers: [Worker], progress: ProgressDisplay, stats: inout ExactKNNStats
    ) throws {
        let d = rows.vectors.columns
        let next = Atomic<Int>(0)
        // Row lists are indexed by global row id in self-joins (rows and columns are one set)
        // and by query index otherwise; the query chunk starts at 0 either way.
        tiles.withUnsafeBufferPointer { tileBuffer in
            let tileList = UnsafeSendable(tileBuffer)
            DispatchQueue.concurrentPerform(iterations: workers.count) { workerIndex in
                let worker = workers[workerIndex]
                while !Cancellation.isRequested {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < tileList.value.count else { break }
                    let spec = tileList.value[index]
                    let rowVectors = rows.vectors.pointer + spec.row * d
                    let columnVectors = columns.vectors.pointer + spec.column * d
                    BLAS.gemmABt(
                        m: spec.rowCount, n: spec.columnCount, k: d,
                        a: rowVectors, lda: d, b: columnVectors, ldb: d,
                        c: worker.scratch, ldc: spec.columnCount)
                    let tile = TileScan.Tile(
                        dots: worker.scratch, ldc: spec.columnCount,
                        rowStart: rows.start + spec.row, rowCount: spec.rowCount,
                        columnStart: columns.start + spec.column, columnCount: spec.columnCount,
                        rowVectors: rowVectors, columnVectors: columnVectors, dimension: d,
                        rowNorms: rows.norms + spec.row, columnNorms: columns.norms + spec.column)
                    TileScan.scan(tile, metric: metric, pairs: pairs, rowLists: worker.lists, rowListOffset: 0, columnLists: worker.lists)
                    progress.advance()
                }
            }
        }
        try Cancellation.check()
        stats.tiles += tiles.count
        stats.gemmFlops += tiles.reduce(0.0) { $0 + 2.0 * Double($1.rowCount) * Double($1.columnCount) * Double(d) }
    }

    /// Merges the workers' lists and converts scores to reported distances.
    func finish(workers: [Worker], metric: Metric) -> NeighborTable {
        let target = workers[0].lists
        let rows = target.rows
        let k = target.k
        let blocks = Array(stride(from: 0, to: rows, by: 4096))
        DispatchQueue.concurrentPerform(iterations: blocks.count) { blockIndex in
            let range = blocks[blockIndex]..<min(blocks[blockIndex] + 4096, rows)
            for worker in workers.dropFirst() { target.merge(worker.lists, rows: range) }
        }
        var ids = [Int32](repeating: -1, count: rows * k)
        var distances = [Float](repeating: .infinity, count: rows * k)
        for slot in 0..<(rows * k) where target.ids[slot] != NeighborLists.emptyID {
            ids[slot] = target.ids[slot]
            distances[slot] = metric.reportedDistance(fromScore: target.scores[slot])
        }
        return NeighborTable(rows: rows, k: k, ids: ids, distances: distances)
    }
}

/// Hands a value that is safe by construction (read-only during the parallel section) to
/// Dispatch's `@Sendable` closures.
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
