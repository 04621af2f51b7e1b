import Dispatch
import Foundation
import Logging
import SimjobBLAS
import SimjobKernels

/// An inverted-file index with product-quantized residuals (IVF-PQ; Jegou, Douze and Schmid,
/// IEEE TPAMI 2011).
///
/// A coarse k-means splits the space into `nlist` cells; each vector is stored in its cell's
/// inverted list as `m` bytes: the product-quantized residual `r = x - c` from the cell's
/// centroid `c`. A query visits its `nprobe` nearest cells and estimates each stored vector's
/// distance from lookup tables (asymmetric distance computation).
///
/// Euclidean (and angular, on unit vectors) uses the decomposition of FAISS's IndexIVFPQ:
///
///     ||q - c - r||^2 = ||q - c||^2                    term 1: from the coarse search
///                     + ||r||^2 + 2 (c . r)            term 2: per (cell, sub-centroid), precomputed
///                     - 2 (q . r)                      term 3: per (query, sub-centroid)
///
/// where r is the decoded residual; terms 2 and 3 split over sub-vectors, so a cell's table is
/// `term2[cell] - 2 term3` (m x 2^nbits additions) and a stored vector costs m lookups.
/// Inner product: `-(q . (c + r)) = -(q . c) - sum_s q_s . r_s`: term 1 from the coarse search
/// and one table per query.
public final class IVFPQIndex: @unchecked Sendable {
    public let metric: Metric
    public let dimension: Int
    public let nlist: Int
    public let pq: ProductQuantizer
    /// `nlist x d` coarse centroids (unit-length data for angular).
    public let coarseCentroids: FloatMatrix
    /// List `l` holds entries `listOffsets[l] ..< listOffsets[l + 1]` of `ids` and `codes`.
    public let listOffsets: [Int]
    public let ids: [Int32]
    public let codes: [UInt8]
    /// Where the vectors came from (`file:dataset`), for refinement.
    public let source: String
    /// Term 2 for every (cell, sub-quantizer, centroid): `nlist x m x ksub`; empty for ip.
    let precomputed: [Float]
    let coarseChunk: ExactKNN.Chunk

    public var count: Int { ids.count }

    /// Bytes the index holds: codes, ids, list offsets, centroids, codebooks.
    public var sizeInBytes: Int {
        codes.count + ids.count * 4 + listOffsets.count * 8 + coarseCentroids.byteCount + pq.codebooks.byteCount
    }

    /// The metric the coarse search and the tables use: squared L2 for euclidean and angular
    /// (on unit vectors, `||x - y||^2 = 2 (1 - cos)`), inner product for ip.
    var internalMetric: Metric { metric == .ip ? .ip : .euclidean }

    public init(
        metric: Metric, pq: ProductQuantizer, coarseCentroids: FloatMatrix,
        listOffsets: [Int], ids: [Int32], codes: [UInt8], source: String
    ) {
        self.metric = metric
        self.dimension = coarseCentroids.columns
        self.nlist = coarseCentroids.rows
        self.pq = pq
        self.coarseCentroids = coarseCentroids
        self.listOffsets = listOffsets
        self.ids = ids
        self.codes = codes
        self.source = source
        coarseChunk = ExactKNN.Chunk(vectors: coarseCentroids, start: 0)
        precomputed = metric == .ip ? [] : IVFPQIndex.precomputeTerm2(pq: pq, centroids: coarseCentroids)
    }

    /// `||r_s,j||^2 + 2 (c_l,s . r_s,j)` for every cell l, sub-quantizer s, centroid j.
    static func precomputeTerm2(pq: ProductQuantizer, centroids: FloatMatrix) -> [Float] {
        let nlist = centroids.rows
        let width = pq.m * pq.ksub
        var table = [Float](repeating: 0, count: nlist * width)
        table.withUnsafeMutableBufferPointer { buffer in
            // c_l . r terms of all cells at once: one sgemm per sub-quantizer.
            pq.innerProductTables(centroids.pointer, rows: nlist, into: buffer.baseAddress!)
            for cell in 0..<nlist {
                let row = buffer.baseAddress! + cell * width
                for index in 0..<width { row[index] = pq.codebookNorms[index] + 2 * row[index] }
            }
        }
        return table
    }

    // MARK: training

    /// Trains the coarse quantizer and the product quantizer on a sample of `source`, then
    /// encodes every vector of it.
    public static func train(
        _ source: RowSource, metric: Metric, config: IVFPQConfig, logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .silent
    ) throws -> (IVFPQIndex, IVFPQTrainStats) {
        let started = ProgressDisplay.now()
        let trained = try trainQuantizers(source, metric: metric, config: config, logger: logger, progressStyle: progressStyle)
        var stats = trained.stats
        let encodeStarted = ProgressDisplay.now()
        let (cells, codes) = try encode(source, rows: 0..<source.rows, trained: trained, config: config, resident: trained.resident,
                                        logger: logger, progressStyle: progressStyle)
        stats.encodeSeconds = ProgressDisplay.now() - encodeStarted
        let index = assemble(trained, cells: cells, codes: codes, config: config, stats: &stats)
        stats.totalSeconds = ProgressDisplay.now() - started
        return (index, stats)
    }

    /// The quantizers, trained; no vector encoded yet.
    public struct Trained: @unchecked Sendable {
        public var metric: Metric
        public var coarseCentroids: FloatMatrix
        public var pq: ProductQuantizer
        public var source: String
        public var stats: IVFPQTrainStats
        /// The whole set, when it fit in memory (read once for the sample and the encoding).
        var resident: FloatMatrix?

        public init(metric: Metric, coarseCentroids: FloatMatrix, pq: ProductQuantizer, source: String, stats: IVFPQTrainStats = IVFPQTrainStats()) {
            self.metric = metric
            self.coarseCentroids = coarseCentroids
            self.pq = pq
            self.source = source
            self.stats = stats
        }

        /// An index of these quantizers with no vector in it (the shared state of encoding
        /// shards, saved like any index).
        public var emptyIndex: IVFPQIndex {
            IVFPQIndex(metric: metric, pq: pq, coarseCentroids: coarseCentroids, listOffsets: [Int](repeating: 0, count: coarseCentroids.rows + 1),
                       ids: [], codes: [], source: source)
        }
    }

    /// Encoding shards start on multiples of this many rows, so that every block the
    /// assignment (512 rows) and the PQ encoding (1,024) multiply is the one a whole run
    /// multiplies: codes and cells then match a whole run's bit for bit.
    public static let encodeAlignment = 1024

    /// Trains the coarse quantizer and the product quantizer on a sample of `source`.
    public static func trainQuantizers(
        _ source: RowSource, metric: Metric, config: IVFPQConfig, logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .silent
    ) throws -> Trained {
        let n = source.rows, d = source.dimension
        try ProductQuantizer.validate(dimension: d, m: config.m, nbits: config.nbits)
        guard config.nlist >= 1, config.nlist <= n else {
            throw SimjobError("nlist = \(config.nlist) must be between 1 and the \(n) rows of \(source.name)")
        }
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        var stats = IVFPQTrainStats()
        stats.vectors = n

        // Coarse quantizer on a sample of nlist * max_points_per_centroid rows.
        let sampleSize = config.maxPointsPerCentroid > 0 ? min(n, config.nlist * config.maxPointsPerCentroid) : n
        if sampleSize < n {
            logger?.info("train: sampling \(sampleSize) of \(n) vectors (nlist = \(config.nlist) x max_points_per_centroid = \(config.maxPointsPerCentroid))")
        }
        // A set that fits in memory is read once; the sample and the encoding both use it.
        let readStarted = ProgressDisplay.now()
        let resident: FloatMatrix? = source.floatBytes <= ProcessMemory.limit(config.memoryLimit)
            ? try source.readMatrix(0..<n, metric: metric) : nil
        stats.readSeconds = ProgressDisplay.now() - readStarted
        let sample: FloatMatrix
        if let resident {
            let chosen = sampleIndices(sampleSize, from: n, seed: config.seed)
            sample = FloatMatrix(rows: chosen.count, columns: d)
            for (row, index) in chosen.enumerated() { sample.row(row).update(from: resident.row(index), count: d) }
        } else {
            sample = try source.sampleRows(sampleSize, seed: config.seed, metric: metric)
        }
        stats.trainingPoints = sample.rows
        let coarse = try trainCoarse(sample, metric: metric, config: config, logger: logger, progressStyle: progressStyle)
        stats.coarseSeconds = coarse.seconds
        stats.coarseObjective = coarse.objective

        // Product quantizer on the sample's residuals.
        let pqStarted = ProgressDisplay.now()
        let assigner = NearestCentroid(centroids: coarse.centroids, innerProduct: metric == .ip, gemm: config.gemm)
        var sampleCells = [Int32](repeating: 0, count: sample.rows)
        try sampleCells.withUnsafeMutableBufferPointer { cells in
            try assigner.assign(sample.pointer, rows: sample.rows, lda: d, rowNorms: nil, indices: cells.baseAddress!, scores: nil, threads: threads)
            subtractCentroids(sample, cells: cells.baseAddress!, centroids: coarse.centroids)
        }
        var pqConfig = KMeansConfig(k: 1 << config.nbits)
        pqConfig.gemm = config.gemm
        pqConfig.iterations = config.pqIterations
        pqConfig.maxPointsPerCentroid = config.maxPointsPerCentroid
        pqConfig.seed = config.seed &+ 1000
        pqConfig.threads = config.threads
        let (pq, _) = try ProductQuantizer.train(sample, m: config.m, nbits: config.nbits, kmeans: pqConfig, logger: logger)
        let checkRows = min(sample.rows, 16_384)
        let check = FloatMatrix(rows: checkRows, columns: d)
        check.pointer.update(from: sample.pointer, count: checkRows * d)
        stats.reconstructionError = try pq.reconstructionError(check, threads: threads)
        stats.pqSeconds = ProgressDisplay.now() - pqStarted
        var trained = Trained(metric: metric, coarseCentroids: coarse.centroids, pq: pq, source: source.name, stats: stats)
        trained.resident = resident
        return trained
    }

    /// The coarse quantizer: k-means of `nlist` cells on an already drawn sample (spherical for
    /// angular). IVF-PQ and IVF-Flat share it.
    static func trainCoarse(
        _ sample: FloatMatrix, metric: Metric, config: IVFPQConfig, logger: Logger?, progressStyle: ProgressDisplay.Style
    ) throws -> KMeansResult {
        var coarseConfig = KMeansConfig(k: config.nlist)
        coarseConfig.gemm = config.gemm
        coarseConfig.iterations = config.coarseIterations
        coarseConfig.maxPointsPerCentroid = 0  // already sampled
        coarseConfig.seed = config.seed
        coarseConfig.threads = config.threads
        coarseConfig.spherical = metric == .angular
        var coarseKMeans = KMeans(config: coarseConfig, logger: logger)
        coarseKMeans.label = "coarse quantizer"
        coarseKMeans.progressStyle = progressStyle
        return try coarseKMeans.train(sample)
    }

    /// `nlist * sum(size^2) / n^2` of inverted lists given by their offsets.
    static func listImbalance(_ offsets: [Int]) -> Double {
        let n = Double(max(offsets.last ?? 0, 1)), nlist = offsets.count - 1
        let squares = (0..<nlist).reduce(0.0) { total, cell in
            let size = Double(offsets[cell + 1] - offsets[cell])
            return total + size * size
        }
        return Double(nlist) * squares / (n * n)
    }

    /// Each row's cell and codes, for rows `rows` of `source` (all of them, or one shard's,
    /// starting on a multiple of `encodeAlignment`), streaming the source by blocks unless
    /// `resident` holds the whole set.
    public static func encode(
        _ source: RowSource, rows range: Range<Int>, trained: Trained, config: IVFPQConfig, resident: FloatMatrix? = nil,
        logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .silent
    ) throws -> (cells: [Int32], codes: [UInt8]) {
        let n = source.rows, d = source.dimension, metric = trained.metric, pq = trained.pq
        precondition(range.lowerBound == 0 || range.lowerBound % encodeAlignment == 0, "shards of the encoding start on multiples of encodeAlignment")
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        // One product format for the whole set, whatever part of it this call encodes.
        let format = try NearestCentroid.format(config.gemm, rows: n, k: config.nlist, dimension: d)
        let assigner = NearestCentroid(centroids: trained.coarseCentroids, innerProduct: metric == .ip,
                                       gemm: format.map { $0 == .int8 ? .int8 : .bf16 } ?? .fp32)
        let progress = ProgressDisplay("encode", total: range.count, unit: "vectors", style: progressStyle, logger: logger)
        var cellOf = [Int32](repeating: 0, count: range.count)
        var allCodes = [UInt8](repeating: 0, count: range.count * config.m)
        // Encodes rows `local` (of this call's range) given as (already normalised) vectors; overwrites them.
        func encode(_ local: Range<Int>, _ vectors: FloatMatrix) throws {
            try cellOf.withUnsafeMutableBufferPointer { cells in
                let blockCells = cells.baseAddress! + local.lowerBound
                try assigner.assign(vectors.pointer, rows: local.count, lda: d, rowNorms: nil, indices: blockCells, scores: nil, threads: threads)
                subtractCentroids(vectors, cells: blockCells, centroids: trained.coarseCentroids)
            }
            try allCodes.withUnsafeMutableBufferPointer { buffer in
                try pq.encode(vectors.pointer, rows: local.count, into: buffer.baseAddress! + local.lowerBound * config.m, threads: threads)
            }
            progress.advance(by: local.count)
        }
        let blockRows = 65_536
        for start in stride(from: range.lowerBound, to: range.upperBound, by: blockRows) {
            try Cancellation.check()
            let rows = start..<min(start + blockRows, range.upperBound)
            let view: FloatMatrix
            if let resident {
                view = FloatMatrix(rows: rows.count, columns: d)
                view.pointer.update(from: resident.row(start), count: rows.count * d)
            } else {
                view = try source.readMatrix(rows, metric: metric)
            }
            try encode((rows.lowerBound - range.lowerBound)..<(rows.upperBound - range.lowerBound), view)
        }
        progress.finish()
        return (cellOf, allCodes)
    }

    /// The index from every row's cell and codes (in row order).
    public static func assemble(_ trained: Trained, cells cellOf: [Int32], codes allCodes: [UInt8], config: IVFPQConfig, stats: inout IVFPQTrainStats) -> IVFPQIndex {
        let n = cellOf.count
        let (offsets, ids, codes) = bucketByCell(cellOf, codes: allCodes, nlist: config.nlist, m: config.m)
        stats.vectors = n
        stats.listImbalance = listImbalance(offsets)
        return IVFPQIndex(
            metric: trained.metric, pq: trained.pq, coarseCentroids: trained.coarseCentroids, listOffsets: offsets,
            ids: ids, codes: codes, source: trained.source)
    }

    /// Inverted lists from every row's cell and codes: a counting sort, which keeps ids ascending
    /// within each list. Returns the list offsets, the ids by list and their codes.
    static func bucketByCell(_ cellOf: [Int32], codes allCodes: [UInt8], nlist: Int, m: Int) -> ([Int], [Int32], [UInt8]) {
        let n = cellOf.count
        var offsets = [Int](repeating: 0, count: nlist + 1)
        for cell in cellOf { offsets[Int(cell) + 1] += 1 }
        for cell in 0..<nlist { offsets[cell + 1] += offsets[cell] }
        var cursor = offsets
        var ids = [Int32](repeating: 0, count: n)
        var codes = [UInt8](repeating: 0, count: n * m)
        for row in 0..<n {
            let cell = Int(cellOf[row])
            let slot = cursor[cell]
            cursor[cell] += 1
            ids[slot] = Int32(row)
            for s in 0..<m { codes[slot * m + s] = allCodes[row * m + s] }
        }
        return (offsets, ids, codes)
    }

    /// The `k` nearest cells of each row with their raw scores (`||x - c||^2`, or `-x.c`).
    /// `x_i -= c_cells[i]` for every row.
    static func subtractCentroids(_ vectors: FloatMatrix, cells: UnsafePointer<Int32>, centroids: FloatMatrix) {
        let d = vectors.columns
        for row in 0..<vectors.rows {
            let x = vectors.row(row), c = centroids.row(Int(cells[row]))
            for j in 0..<d { x[j] -= c[j] }
        }
    }

    // MARK: search

    /// What one search did.
    public struct SearchStats: Sendable {
        public var queries = 0
        public var seconds = 0.0
        public var codesScanned = 0
        public var queriesPerSecond: Double { seconds > 0 ? Double(queries) / seconds : 0 }
    }

    /// The `k` nearest stored vectors of each query. `queries` are raw (this normalises them
    /// for angular); `base`, needed when `refine > 0`, holds the original vectors by id
    /// (normalised for angular, as `VectorSource.readMatrix(metric:)` returns them).
    public func search(_ queries: FloatMatrix, config: IVFPQSearchConfig, base: FloatMatrix? = nil) throws -> (NeighborTable, SearchStats) {
        let started = ProgressDisplay.now()
        let prepared = try preparedQueries(queries, k: config.k)
        guard config.nprobe >= 1 else { throw SimjobError("nprobe must be at least 1 (got \(config.nprobe))") }
        guard config.refine >= 0 else { throw SimjobError("refine must not be negative") }
        if config.refine > 0 && base == nil { throw SimjobError("refine needs the original vectors") }
        let nprobe = min(config.nprobe, nlist)
        let candidates = min(config.refine > 0 ? config.k * config.refine : config.k, count)
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)

        let cells = try ExactKNN.nearestScores(
            queries: ExactKNN.Chunk(vectors: prepared, start: 0), base: coarseChunk, metric: internalMetric, k: nprobe, threads: threads)

        let result = NeighborLists(rows: queries.rows, k: config.k)
        let width = pq.m * pq.ksub
        let blockSize = 32
        let blocks = (queries.rows + blockSize - 1) / blockSize
        // Per worker: the block's term-3 tables, one query's table, its shortlist, codes scanned.
        let workers = min(threads, max(blocks, 1))
        let term3 = UnsafeMutablePointer<Float>.allocate(capacity: workers * blockSize * width)
        let tables = UnsafeMutablePointer<Float>.allocate(capacity: workers * width)
        let shortlists = UnsafeMutablePointer<CandidateHeap>.allocate(capacity: workers)
        for worker in 0..<workers { (shortlists + worker).initialize(to: CandidateHeap(capacity: candidates)) }
        var scanned = [Int](repeating: 0, count: workers)
        defer {
            term3.deallocate()
            tables.deallocate()
            for worker in 0..<workers { shortlists[worker].deallocate() }
            shortlists.deinitialize(count: workers)
            shortlists.deallocate()
        }
        try scanned.withUnsafeMutableBufferPointer { scannedBuffer in
            let shared = UnsafeSendable((scannedBuffer.baseAddress!))
            try BlockedJoin.run(items: blocks, threads: workers) { block, worker in
                let first = block * blockSize
                let w = worker.index
                shared.value[w] += scanBlock(
                    first..<min(first + blockSize, queries.rows), prepared: prepared, cells: cells, nprobe: nprobe,
                    term3: term3 + w * blockSize * width, table: tables + w * width, shortlist: &shortlists[w],
                    into: result, base: base, refine: config.refine > 0)
            }
        }
        try Cancellation.check()
        var stats = SearchStats()
        stats.queries = queries.rows
        stats.codesScanned = scanned.reduce(0, +)
        let table = NeighborTable(converting: result, metric: metric)
        Invariants.check(table, idLimit: count, selfJoin: false, what: "IVF-PQ search")
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }

    /// Scans the probed cells' codes for the queries `range` (at most one block): term 3 for the
    /// whole block by one product, then per query its table and shortlist. Returns the number of
    /// codes scanned.
    func scanBlock(
        _ range: Range<Int>, prepared: FloatMatrix, cells: NeighborTable, nprobe: Int,
        term3: UnsafeMutablePointer<Float>, table: UnsafeMutablePointer<Float>, shortlist: inout CandidateHeap,
        into result: NeighborLists, base: FloatMatrix?, refine: Bool
    ) -> Int {
        let width = pq.m * pq.ksub
        var scanned = 0
        // Term 3 for the whole block: q_s . r_s,j for every sub-quantizer.
        pq.innerProductTables(prepared.row(range.lowerBound), rows: range.count, into: term3)
        for query in range {
            shortlist.removeAll()
            let queryTerm3 = term3 + (query - range.lowerBound) * width
            if metric == .ip {
                for index in 0..<width { table[index] = -queryTerm3[index] }
            }
            for probe in 0..<nprobe {
                let cell = Int(cells.ids[query * nprobe + probe])
                guard cell >= 0 else { continue }
                let start = listOffsets[cell], end = listOffsets[cell + 1]
                guard end > start else { continue }
                if metric != .ip {
                    precomputed.withUnsafeBufferPointer { term2 in
                        let cellTerm2 = term2.baseAddress! + cell * width
                        for index in 0..<width { table[index] = cellTerm2[index] - 2 * queryTerm3[index] }
                    }
                }
                codes.withUnsafeBufferPointer { codeBuffer in
                    ids.withUnsafeBufferPointer { idBuffer in
                        PQKernels.scanCodes(
                            codes: codeBuffer.baseAddress! + start * pq.m, ids: idBuffer.baseAddress! + start,
                            count: end - start, m: pq.m, ksub: pq.ksub, table: table,
                            base: cells.distances[query * nprobe + probe], heap: &shortlist)
                    }
                }
                scanned += end - start
            }
            finishQuery(query, shortlist: shortlist, into: result, prepared: prepared, base: base, refine: refine)
        }
        return scanned
    }

    /// Moves a query's shortlist into the result: re-ranked by exact scores when refining,
    /// else with the estimates turned into the metric's scores.
    func finishQuery(_ query: Int, shortlist: CandidateHeap, into result: NeighborLists, prepared: FloatMatrix, base: FloatMatrix?, refine: Bool) {
        shortlist.forEach { estimate, id in
            let score: Float
            if refine, let base {
                score = metric.exactScore(prepared.row(query), base.row(Int(id)), dimension: dimension)
            } else {
                // Estimates: squared L2 is never negative; angular on unit vectors is half of it.
                switch metric {
                case .euclidean: score = max(estimate, 0)
                case .angular: score = max(estimate, 0) / 2
                case .ip: score = estimate
                }
            }
            result.insert(row: query, score: score, id: id)
        }
    }
}
