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
        ProcessMemory.limit(config.memoryLimit)
    }

    // MARK: entry points

    /// The k nearest rows of `base` for every row of `queries` (ground truth).
    public func search(queries: RowSource, base: RowSource, metric: Metric) throws -> (NeighborTable, ExactKNNStats) {
        guard queries.dimension == base.dimension else {
            throw SimjobError("\(queries.name) has dimension \(queries.dimension) but \(base.name) has \(base.dimension)")
        }
        try validateK(rows: base.rows, selfJoin: false, source: base)
        let queryChunk = try Chunk(source: queries, range: 0..<queries.rows, metric: metric)
        let result = try run(rows: queryChunk, base: base, metric: metric, selfJoin: false)
        Invariants.check(result.0, idLimit: base.rows, selfJoin: false, what: "exact search")
        return result
    }

    /// The k nearest other rows of every row of `source` (the k-NN graph, self excluded).
    public func graph(_ source: RowSource, metric: Metric) throws -> (NeighborTable, ExactKNNStats) {
        try validateK(rows: source.rows, selfJoin: true, source: source)
        let result = try run(rows: nil, base: source, metric: metric, selfJoin: true)
        Invariants.check(result.0, idLimit: source.rows, selfJoin: true, what: "exact k-NN graph")
        return result
    }

    /// Queries `range` only, against all of `base`: one shard of a ground truth. The table's row
    /// r is query `range.lowerBound + r`; lists are identical to those rows of the whole search.
    public func search(queries: RowSource, rows range: Range<Int>, base: RowSource, metric: Metric) throws -> (NeighborTable, ExactKNNStats) {
        guard queries.dimension == base.dimension else {
            throw SimjobError("\(queries.name) has dimension \(queries.dimension) but \(base.name) has \(base.dimension)")
        }
        try validateK(rows: base.rows, selfJoin: false, source: base)
        let queryChunk = try Chunk(source: queries, range: range, metric: metric)
        let result = try run(rows: queryChunk, base: base, metric: metric, selfJoin: false)
        Invariants.check(result.0, idLimit: base.rows, selfJoin: false, what: "exact search")
        return result
    }

    /// Rows `range` of the k-NN graph of `source`: each one's k nearest other rows among all of
    /// `source`. One shard of the graph: the lists are those rows of `graph(_:metric:)`'s table,
    /// bit for bit (every listed score is the exact one, computed from the two vectors whichever
    /// side of a tile they sit on, and lists order candidates by score, then id).
    public func graphRows(_ range: Range<Int>, of source: RowSource, metric: Metric) throws -> (NeighborTable, ExactKNNStats) {
        try validateK(rows: source.rows, selfJoin: true, source: source)
        let queryChunk = try Chunk(source: source, range: range, metric: metric)
        let result = try run(rows: queryChunk, base: source, metric: metric, selfJoin: false, excludingSelf: true)
        Invariants.check(result.0, idLimit: source.rows, selfJoin: false, what: "exact k-NN graph rows")
        return result
    }

    /// In-memory variants, for callers that already hold the vectors (and for tests).
    public func search(queries: FloatMatrix, base: FloatMatrix, metric: Metric) throws -> (NeighborTable, ExactKNNStats) {
        precondition(queries.columns == base.columns)
        guard config.k >= 1, config.k <= base.rows else {
            throw SimjobError("k = \(config.k) must be between 1 and the \(base.rows) base rows")
        }
        let rows = Chunk(copying: queries, start: 0, metric: metric)
        let columns = Chunk(copying: base, start: 0, metric: metric)
        let result = try runInMemory(rows: rows, columns: columns, metric: metric, selfJoin: false)
        Invariants.check(result.0, idLimit: base.rows, selfJoin: false, what: "exact search")
        return result
    }

    public func graph(_ vectors: FloatMatrix, metric: Metric) throws -> (NeighborTable, ExactKNNStats) {
        guard config.k >= 1, config.k <= vectors.rows - 1 else {
            throw SimjobError("k = \(config.k) must be between 1 and n - 1 = \(vectors.rows - 1) (a row is not its own neighbour)")
        }
        let all = Chunk(copying: vectors, start: 0, metric: metric)
        let result = try runInMemory(rows: all, columns: all, metric: metric, selfJoin: true)
        Invariants.check(result.0, idLimit: vectors.rows, selfJoin: true, what: "exact k-NN graph")
        return result
    }

    func validateK(rows: Int, selfJoin: Bool, source: RowSource) throws {
        guard config.k >= 1 else { throw SimjobError("k must be at least 1 (got \(config.k))") }
        if selfJoin && config.k > rows - 1 {
            throw SimjobError("k = \(config.k) is larger than n - 1 = \(rows - 1) for \(source.name) (a row is not its own neighbour)")
        }
        if !selfJoin && config.k > rows {
            throw SimjobError("k = \(config.k) is larger than the \(rows) rows of \(source.name)")
        }
    }

    // MARK: planning

    /// A block of vectors held in memory: rows `start ..< start + count` of a set, normalised
    /// for angular, with their squared norms.
    final class Chunk: @unchecked Sendable {
        let start: Int
        let vectors: FloatMatrix
        let norms: UnsafeMutablePointer<Float>
        /// The vectors in a reduced-precision format, once `prepare(_:threads:)` made them.
        private(set) var reduced: ReducedRows?
        var count: Int { vectors.rows }
        var range: Range<Int> { start..<(start + count) }

        init(vectors: FloatMatrix, start: Int) {
            self.start = start
            self.vectors = vectors
            norms = .allocate(capacity: max(vectors.rows, 1))
            VectorKernels.squaredNorms(vectors.pointer, rows: vectors.rows, dimension: vectors.columns, into: norms)
        }

        convenience init(source: RowSource, range: Range<Int>, metric: Metric) throws {
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

        /// The rows `ids` of `source`, copied into a chunk of their own (ids become 0, 1, ...).
        convenience init(gathering ids: [Int32], from source: Chunk) {
            let d = source.vectors.columns
            let matrix = FloatMatrix(rows: ids.count, columns: d)
            for (row, id) in ids.enumerated() { matrix.row(row).update(from: source.vectors.row(Int(id)), count: d) }
            self.init(vectors: matrix, start: 0)
        }

        deinit {
            norms.deallocate()
            reduced?.deallocate()
        }

        /// Encodes the vectors for `format`'s products (nil: fp32, nothing to do), in parallel.
        func prepare(_ format: ReducedGEMM.Format?, threads: Int) {
            guard let format, reduced?.format != format else { return }
            reduced?.deallocate()
            let encoded = ReducedRows.allocate(format: format, rows: count, dimension: vectors.columns)
            let pieces = max(1, min(threads * 4, count / 256))
            let source = UnsafeSendable(UnsafePointer(vectors.pointer)), target = UnsafeSendable(encoded), n = count
            DispatchQueue.concurrentPerform(iterations: pieces) { piece in
                target.value.encode(source.value, rows: (n * piece / pieces)..<(n * (piece + 1) / pieces))
            }
            reduced = encoded
        }

        /// The inner products of this chunk's rows `rows` with `columns`' rows `columnRange`,
        /// one single-threaded sgemm into `scratch` (`rows.count x columnRange.count`), as a
        /// tile for the scans; ids are the chunks' `start` plus the row index.
        ///
        /// With a `multiplier` and both chunks prepared for its format, the product is the
        /// reduced-precision one (int8 sums or bf16 products in `scratch`) and the tile carries
        /// what the scans need to bound its error.
        func tile(
            _ rows: Range<Int>, against columns: Chunk, _ columnRange: Range<Int>, scratch: UnsafeMutablePointer<Float>,
            multiplier: ReducedGEMM? = nil
        ) -> TileScan.Tile {
            let d = vectors.columns
            let rowVectors = vectors.row(rows.lowerBound), columnVectors = columns.vectors.row(columnRange.lowerBound)
            var reducedTile: ReducedTile? = nil
            if let multiplier, let rowSide = reduced, let columnSide = columns.reduced,
               rowSide.format == multiplier.format, columnSide.format == multiplier.format {
                multiplier.multiply(
                    m: rows.count, n: columnRange.count, k: d, a: rowSide.aSide(rows.lowerBound), lda: d,
                    b: columnSide.bSide(columnRange.lowerBound), ldb: d, c: UnsafeMutableRawPointer(scratch), ldc: columnRange.count)
                let integers = multiplier.format == .int8 ? UnsafePointer(UnsafeRawPointer(scratch).assumingMemoryBound(to: Int32.self)) : nil
                reducedTile = ReducedTile(integers: integers, rows: rowSide, rowStart: rows.lowerBound, columns: columnSide, columnStart: columnRange.lowerBound, columnCount: columnRange.count)
            } else {
                BLAS.gemmABt(
                    m: rows.count, n: columnRange.count, k: d, a: rowVectors, lda: d, b: columnVectors, ldb: d,
                    c: scratch, ldc: columnRange.count)
            }
            var tile = TileScan.Tile(
                dots: scratch, ldc: columnRange.count,
                rowStart: start + rows.lowerBound, rowCount: rows.count,
                columnStart: columns.start + columnRange.lowerBound, columnCount: columnRange.count,
                rowVectors: rowVectors, columnVectors: columnVectors, dimension: d,
                rowNorms: norms + rows.lowerBound, columnNorms: columns.norms + columnRange.lowerBound)
            tile.reduced = reducedTile
            return tile
        }
    }

    /// One tile: local offsets into the row chunk and the column chunk.
    struct TileSpec {
        var row: Int, rowCount: Int, column: Int, columnCount: Int
    }

    /// Block starts of a chunk of `count` rows.
    func blocks(_ count: Int) -> [Range<Int>] {
        stride(from: 0, to: count, by: config.block).map { $0..<min($0 + config.block, count) }
    }

    func tile(_ rows: Range<Int>, _ columns: Range<Int>) -> TileSpec {
        TileSpec(row: rows.lowerBound, rowCount: rows.count, column: columns.lowerBound, columnCount: columns.count)
    }

    /// The work of one chunk pair, as rounds of tiles.
    ///
    /// For the symmetric self-join, the tiles of one round touch pairwise disjoint blocks of
    /// rows, so workers write one shared set of lists with no locks and no per-worker copies:
    /// the diagonal tiles form one round, and the pairs of distinct blocks are split into rounds
    /// by the circle method of round-robin tournaments (every pair of blocks meets exactly once,
    /// no block plays twice in a round). Between two different chunks, round r pairs row block
    /// i with column block (i + r) mod m. Otherwise all tiles form one round and each worker
    /// fills its own lists.
    func schedule(rowCount: Int, columnCount: Int, sameChunk: Bool, symmetric: Bool) -> [[TileSpec]] {
        let rowBlocks = blocks(rowCount)
        let columnBlocks = blocks(columnCount)
        guard symmetric else {
            return [rowBlocks.flatMap { rows in columnBlocks.map { tile(rows, $0) } }]
        }
        if sameChunk {
            var rounds: [[TileSpec]] = [rowBlocks.map { tile($0, $0) }]
            let m = rowBlocks.count
            let teams = m % 2 == 0 ? m : m + 1  // an odd count gets a dummy block that sits out
            for r in 0..<max(teams - 1, 0) {
                var round: [TileSpec] = []
                func add(_ a: Int, _ b: Int) {
                    guard a != b, a < m, b < m else { return }
                    round.append(tile(rowBlocks[min(a, b)], rowBlocks[max(a, b)]))
                }
                add(r, teams - 1)
                for i in 1..<(teams / 2) {
                    add((r + i) % (teams - 1), (r - i + teams - 1) % (teams - 1))
                }
                if !round.isEmpty { rounds.append(round) }
            }
            return rounds
        }
        let (few, many) = (min(rowBlocks.count, columnBlocks.count), max(rowBlocks.count, columnBlocks.count))
        return (0..<many).map { r in
            (0..<few).map { i in
                rowBlocks.count <= columnBlocks.count
                    ? tile(rowBlocks[i], columnBlocks[(i + r) % many])
                    : tile(rowBlocks[(i + r) % many], columnBlocks[i])
            }
        }
    }

    // MARK: running

    /// Per-worker state: a tile buffer, and its own lists where workers do not share them.
    final class Worker: @unchecked Sendable {
        let lists: NeighborLists?
        let scratch: UnsafeMutablePointer<Float>
        /// The worker's oneDNN products, when the run uses a reduced format.
        let multiplier: ReducedGEMM?
        init(listRows: Int?, k: Int, tileElements: Int, format: ReducedGEMM.Format? = nil) {
            lists = listRows.map { NeighborLists(rows: $0, k: k) }
            scratch = .allocate(capacity: tileElements)
            multiplier = format.flatMap { ReducedGEMM(format: $0) }
        }
        deinit {
            lists?.deallocate()
            scratch.deallocate()
        }
    }

    /// The lists every worker writes (symmetric self-join), or nil when each has its own.
    struct ListPlan {
        var shared: NeighborLists?
        var workers: [Worker]
        /// The reduced format of the products (nil: fp32 sgemm).
        var format: ReducedGEMM.Format?
    }

    func makePlan(listRows: Int, sharedLists: Bool, format: ReducedGEMM.Format? = nil) -> ListPlan {
        BLASRuntime.setThreads(1)
        let shared = sharedLists ? NeighborLists(rows: listRows, k: config.k) : nil
        // Worker 0 of the per-worker mode fills the lists that become the result.
        let workers = (0..<threadCount).map { _ in
            Worker(listRows: sharedLists ? nil : listRows, k: config.k, tileElements: config.block * config.block, format: format)
        }
        return ListPlan(shared: shared, workers: workers, format: format)
    }

    /// The reduced format for this run's products (nil: fp32), from `config.gemm`.
    func productFormat(rows: Int, columns: Int, dimension: Int, selfJoin: Bool) throws -> ReducedGEMM.Format? {
        let pairs = Double(rows) * Double(columns) * (selfJoin && config.symmetric ? 0.5 : 1)
        return try GEMMCalibration.resolve(config.gemm, dimension: dimension, flops: 2 * pairs * Double(dimension))
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

    /// The k nearest `base` rows of every `queries` row, on prepared chunks (normalised where
    /// the metric needs it), with no copy of the vectors. Distances are left as raw scores
    /// (squared L2 for euclidean; see `Metric`): clustering and index code works in scores.
    func nearestScores(queries: Chunk, base: Chunk, metric: Metric) throws -> NeighborTable {
        try runInMemory(rows: queries, columns: base, metric: metric, selfJoin: false, rawScores: true).0
    }

    /// `nearestScores` by a silent engine of `k` with the default tile size: the search every
    /// caller that needs nearest centroids or a sample's exact neighbours runs. Its products are
    /// fp32: a reduced format would encode a second copy of `queries` and `base` (half their
    /// size again), which the approximate graph's memory plan (spilled sets of 10M rows
    /// included) does not hold room for.
    static func nearestScores(queries: Chunk, base: Chunk, metric: Metric, k: Int, threads: Int?, gemm: GEMMChoice = .fp32) throws -> NeighborTable {
        var config = ExactKNNConfig(k: k, metric: metric, threads: threads)
        config.block = ExactKNNConfig.defaultBlock
        config.gemm = gemm
        var engine = ExactKNN(config: config)
        engine.progressStyle = .silent
        return try engine.nearestScores(queries: queries, base: base, metric: metric)
    }

    func runInMemory(rows: Chunk, columns: Chunk, metric: Metric, selfJoin: Bool, rawScores: Bool = false) throws -> (NeighborTable, ExactKNNStats) {
        let started = ProgressDisplay.now()
        var stats = makeStats(rows: rows.count, baseRows: columns.count, dimension: rows.vectors.columns, metric: metric, selfJoin: selfJoin)
        let pairs = pairKind(selfJoin: selfJoin)
        let format = try productFormat(rows: rows.count, columns: columns.count, dimension: rows.vectors.columns, selfJoin: selfJoin)
        rows.prepare(format, threads: threadCount)
        columns.prepare(format, threads: threadCount)
        let plan = makePlan(listRows: rows.count, sharedLists: pairs == .upperTriangle, format: format)
        stats.gemm = format?.rawValue ?? "fp32"
        let rounds = schedule(rowCount: rows.count, columnCount: columns.count, sameChunk: selfJoin, symmetric: pairs == .upperTriangle)
        let progress = makeProgress(rounds.flatMap { $0 }, rows: rows.count, selfJoin: selfJoin)
        for round in rounds {
            try process(round, rows: rows, columns: columns, metric: metric, pairs: pairs, plan: plan, progress: progress, stats: &stats)
        }
        progress.finish()
        stats.chunkLoads = 1
        let table = finish(plan, metric: metric, rawScores: rawScores)
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }

    /// Runs over a base read from a file: whole when it fits in `memoryLimit`, else by chunks.
    /// `rows` is nil for a self-join (the rows are the base's own chunks).
    /// With a query chunk, its lists are indexed from the chunk's first row (`rowListOffset`);
    /// `excludingSelf` skips pairs of one id (the query chunk is rows of the base itself).
    func run(rows queryChunk: Chunk?, base: RowSource, metric: Metric, selfJoin: Bool, excludingSelf: Bool = false) throws -> (NeighborTable, ExactKNNStats) {
        let started = ProgressDisplay.now()
        let n = base.rows
        let d = base.dimension
        var stats = makeStats(rows: queryChunk?.count ?? n, baseRows: n, dimension: d, metric: metric, selfJoin: selfJoin)
        let pairs = excludingSelf ? .allButSelf : pairKind(selfJoin: selfJoin)
        let listOffset = queryChunk?.start ?? 0
        let symmetric = pairs == .upperTriangle

        // Resident vectors: the query chunk plus one base chunk, or two for self-joins.
        // A reduced format keeps a second copy of each chunk (2 bytes per value, 20 per row).
        let format = try productFormat(rows: stats.rows, columns: n, dimension: d, selfJoin: selfJoin)
        let rowBytes = d * 4 + (format.map { ReducedRows.bytesPerRow(format: $0, dimension: d) } ?? 0)
        let queryBytes = queryChunk.map { $0.count * rowBytes } ?? 0
        let available = max(memoryLimit - queryBytes, 0)
        var chunkRows = n
        if n * rowBytes > available {
            chunkRows = min(n, max(config.block, available / (selfJoin ? 2 : 1) / rowBytes))
        }
        stats.gemm = format?.rawValue ?? "fp32"
        queryChunk?.prepare(format, threads: threadCount)
        let chunks = stride(from: 0, to: n, by: chunkRows).map { $0..<min($0 + chunkRows, n) }
        stats.streamed = chunks.count > 1

        var plan: [(Int, Int)] = []
        if selfJoin {
            for p in chunks.indices {
                for q in chunks.indices where !symmetric || q >= p { plan.append((p, q)) }
            }
        } else {
            plan = chunks.indices.map { (0, $0) }
        }
        // Schedules depend only on chunk sizes: build them up front so progress has a total.
        let schedules = plan.map { p, q in
            schedule(rowCount: selfJoin ? chunks[p].count : queryChunk!.count, columnCount: chunks[q].count,
                     sameChunk: selfJoin && p == q, symmetric: symmetric)
        }
        let progress = makeProgress(schedules.flatMap { $0.flatMap { $0 } }, rows: stats.rows, selfJoin: selfJoin)

        let listPlan = makePlan(listRows: stats.rows, sharedLists: symmetric, format: format)
        var resident: (index: Int, chunk: Chunk)? = nil
        for ((p, q), rounds) in zip(plan, schedules) {
            try Cancellation.check()
            let rowChunk: Chunk
            if let queryChunk {
                rowChunk = queryChunk
            } else if let current = resident, current.index == p {
                rowChunk = current.chunk
            } else {
                resident = nil  // release the previous chunk before reading the next
                rowChunk = try Chunk(source: base, range: chunks[p], metric: metric)
                rowChunk.prepare(format, threads: threadCount)
                resident = (p, rowChunk)
                stats.chunkLoads += 1
            }
            let columnChunk: Chunk
            if selfJoin && q == p {
                columnChunk = rowChunk
            } else {
                columnChunk = try Chunk(source: base, range: chunks[q], metric: metric)
                columnChunk.prepare(format, threads: threadCount)
                stats.chunkLoads += 1
            }
            for round in rounds {
                try process(round, rows: rowChunk, columns: columnChunk, metric: metric, pairs: pairs, plan: listPlan, progress: progress,
                            stats: &stats, rowListOffset: listOffset)
            }
        }
        progress.finish()
        let table = finish(listPlan, metric: metric)
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }

    /// Progress counted in pairs of vectors (tiles differ in size), shown as rows per second.
    func makeProgress(_ tiles: [TileSpec], rows: Int, selfJoin: Bool) -> ProgressDisplay {
        let pairs = tiles.reduce(0) { $0 + $1.rowCount * $1.columnCount }
        return ProgressDisplay(
            selfJoin ? "k-NN graph" : "exact search", total: pairs, unit: "rows",
            scale: Double(pairs) / Double(max(rows, 1)), style: progressStyle)
    }

    /// Runs one round of tiles on every worker; returns when all are done.
    func process(
        _ tiles: [TileSpec], rows: Chunk, columns: Chunk, metric: Metric, pairs: TileScan.Pairs,
        plan: ListPlan, progress: ProgressDisplay, stats: inout ExactKNNStats, rowListOffset: Int = 0
    ) throws {
        let d = rows.vectors.columns
        let workers = plan.workers
        let shared = plan.shared
        let rescored = Atomic<Int>(0)
        // Lists are indexed by global row id in self-joins (rows and columns are one set) and
        // by query index otherwise (`rowListOffset`: where the query chunk starts).
        try tiles.withUnsafeBufferPointer { tileBuffer in
            let tileList = UnsafeSendable(tileBuffer)
            try BlockedJoin.run(
                items: tiles.count, threads: workers.count, block: config.block, progress: progress,
                weight: { tileList.value[$0].rowCount * tileList.value[$0].columnCount }, scratch: { workers[$0].scratch },
                multiplier: { workers[$0].multiplier }
            ) { index, worker in
                let lists = shared ?? workers[worker.index].lists!
                let spec = tileList.value[index]
                let tile = worker.tile(rows, spec.row..<(spec.row + spec.rowCount), against: columns, spec.column..<(spec.column + spec.columnCount))
                let survivors = TileScan.scan(tile, metric: metric, pairs: pairs, rowLists: lists, rowListOffset: rowListOffset, columnLists: lists)
                rescored.add(survivors, ordering: .relaxed)
            }
        }
        stats.tiles += tiles.count
        stats.rescored += rescored.load(ordering: .relaxed)
        stats.gemmFlops += tiles.reduce(0.0) { $0 + 2.0 * Double($1.rowCount) * Double($1.columnCount) * Double(d) }
    }

    /// Merges per-worker lists (where there are several) and converts scores to distances.
    func finish(_ plan: ListPlan, metric: Metric, rawScores: Bool = false) -> NeighborTable {
        if let shared = plan.shared { return NeighborTable(converting: shared, metric: rawScores ? nil : metric) }
        let target = plan.workers[0].lists!
        let others = plan.workers.dropFirst().map { $0.lists! }
        let rows = target.rows
        let starts = Array(stride(from: 0, to: rows, by: 4096))
        DispatchQueue.concurrentPerform(iterations: starts.count) { index in
            let range = starts[index]..<min(starts[index] + 4096, rows)
            for lists in others { target.merge(lists, rows: range) }
        }
        // The result keeps worker 0 (and so its buffers) alive; the other workers' are freed.
        return NeighborTable(converting: target, metric: rawScores ? nil : metric, owner: plan.workers[0])
    }
}

/// Hands a value that is safe by construction (read-only during the parallel section) to
/// Dispatch's `@Sendable` closures.
public struct UnsafeSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}
