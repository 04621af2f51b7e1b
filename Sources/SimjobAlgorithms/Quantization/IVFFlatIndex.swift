import Dispatch
import Foundation
import Logging
import SimjobBLAS
import SimjobKernels

/// What every searchable index offers the search and evaluation: the same search settings
/// (nprobe, refine where it means something) and the same stats.
public protocol SearchableIndex: AnyObject, Sendable {
    var metric: Metric { get }
    var dimension: Int { get }
    var count: Int { get }
    var nlist: Int { get }
    var sizeInBytes: Int { get }
    /// Where the vectors came from (`file:dataset`), for refinement.
    var source: String { get }
    /// e.g. `IVF-PQ nlist=1024 m=16 nbits=8`.
    var summary: String { get }
    /// ann-benchmarks' algorithm name and the name of one setting.
    var algorithm: String { get }
    func settingName(refine: Int) -> String
    func search(_ queries: FloatMatrix, config: IVFPQSearchConfig, base: FloatMatrix?) throws -> (NeighborTable, IVFPQIndex.SearchStats)
}

extension SearchableIndex {
    /// The queries checked against the index (dimension, and k within the vectors held) and
    /// copied, prepared for the metric (unit rows for angular).
    func preparedQueries(_ queries: FloatMatrix, k: Int) throws -> FloatMatrix {
        guard queries.columns == dimension else {
            throw SimjobError("queries have dimension \(queries.columns) but the index has \(dimension)")
        }
        guard k >= 1, k <= count else { throw SimjobError("k = \(k) must be between 1 and the \(count) indexed vectors") }
        let prepared = FloatMatrix(rows: queries.rows, columns: dimension)
        prepared.pointer.update(from: queries.pointer, count: queries.rows * dimension)
        if metric.normalizesVectors { VectorKernels.normalizeRows(prepared.pointer, rows: prepared.rows, dimension: dimension) }
        return prepared
    }
}

extension IVFPQIndex: SearchableIndex {
    public var summary: String { "IVF-PQ nlist=\(nlist) m=\(pq.m) nbits=\(pq.nbits)" }
    public var algorithm: String { "simjob-ivfpq" }
    public func settingName(refine: Int) -> String { "IVFPQ(nlist=\(nlist),m=\(pq.m),nbits=\(pq.nbits))" + (refine > 0 ? "+refine" : "") }
}

/// An inverted file of the vectors themselves (IVF-Flat, FAISS's `IndexIVFFlat`): the coarse
/// k-means cells of IVF-PQ, each list holding its rows' full vectors (unit length for
/// angular), so a query's distances in its `nprobe` nearest cells are exact. It is the cell
/// structure the approximate k-NN graph searches, as an index that can be saved, searched,
/// evaluated and exported.
public final class IVFFlatIndex: SearchableIndex, @unchecked Sendable {
    public let metric: Metric
    public let dimension: Int
    public let nlist: Int
    /// `nlist x d` coarse centroids.
    public let coarseCentroids: FloatMatrix
    /// List `l` holds entries `listOffsets[l] ..< listOffsets[l + 1]` of `ids` and `vectors`.
    public let listOffsets: [Int]
    public let ids: [Int32]
    /// `count x d`, by list.
    public let vectors: FloatMatrix
    public let source: String
    let coarseChunk: ExactKNN.Chunk

    public var count: Int { ids.count }
    public var sizeInBytes: Int { vectors.byteCount + ids.count * 4 + listOffsets.count * 8 + coarseCentroids.byteCount }
    public var summary: String { "IVF-Flat nlist=\(nlist)" }
    public var algorithm: String { "simjob-ivfflat" }
    public func settingName(refine: Int) -> String { "IVFFlat(nlist=\(nlist))" }
    var internalMetric: Metric { metric == .ip ? .ip : .euclidean }

    public init(metric: Metric, coarseCentroids: FloatMatrix, listOffsets: [Int], ids: [Int32], vectors: FloatMatrix, source: String) {
        self.metric = metric
        self.dimension = coarseCentroids.columns
        self.nlist = coarseCentroids.rows
        self.coarseCentroids = coarseCentroids
        self.listOffsets = listOffsets
        self.ids = ids
        self.vectors = vectors
        self.source = source
        coarseChunk = ExactKNN.Chunk(vectors: coarseCentroids, start: 0)
    }

    /// Trains the coarse quantizer as IVF-PQ does (same sample, same k-means), assigns every
    /// row to its nearest cell and stores the rows by cell.
    public static func train(
        _ source: RowSource, metric: Metric, config: IVFPQConfig, logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .silent
    ) throws -> (IVFFlatIndex, IVFPQTrainStats) {
        let started = ProgressDisplay.now()
        let n = source.rows, d = source.dimension
        guard config.nlist >= 1, config.nlist <= n else {
            throw SimjobError("nlist = \(config.nlist) must be between 1 and the \(n) rows of \(source.name)")
        }
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        var stats = IVFPQTrainStats()
        stats.vectors = n
        let readStarted = ProgressDisplay.now()
        let all = try source.readMatrix(0..<n, metric: metric)
        stats.readSeconds = ProgressDisplay.now() - readStarted
        let sampleSize = config.maxPointsPerCentroid > 0 ? min(n, config.nlist * config.maxPointsPerCentroid) : n
        if sampleSize < n {
            logger?.info("train: sampling \(sampleSize) of \(n) vectors (nlist = \(config.nlist) x max_points_per_centroid = \(config.maxPointsPerCentroid))")
        }
        let chosen = sampleIndices(sampleSize, from: n, seed: config.seed)
        let sample = FloatMatrix(rows: chosen.count, columns: d)
        for (row, index) in chosen.enumerated() { sample.row(row).update(from: all.row(index), count: d) }
        stats.trainingPoints = sample.rows
        let coarse = try IVFPQIndex.trainCoarse(sample, metric: metric, config: config, logger: logger, progressStyle: progressStyle)
        stats.coarseSeconds = coarse.seconds
        stats.coarseObjective = coarse.objective

        let assignStarted = ProgressDisplay.now()
        let assigner = NearestCentroid(centroids: coarse.centroids, innerProduct: metric == .ip, gemm: config.gemm)
        var cellOf = [Int32](repeating: 0, count: n)
        try cellOf.withUnsafeMutableBufferPointer { cells in
            try assigner.assign(all.pointer, rows: n, lda: d, rowNorms: nil, indices: cells.baseAddress!, scores: nil, threads: threads)
        }
        // IVF-PQ's counting sort, with no codes: ids by list, ascending within each.
        let (offsets, ids, _) = IVFPQIndex.bucketByCell(cellOf, codes: [], nlist: config.nlist, m: 0)
        let stored = FloatMatrix(rows: n, columns: d)
        for (slot, id) in ids.enumerated() { stored.row(slot).update(from: all.row(Int(id)), count: d) }
        stats.encodeSeconds = ProgressDisplay.now() - assignStarted
        stats.listImbalance = IVFPQIndex.listImbalance(offsets)
        stats.totalSeconds = ProgressDisplay.now() - started
        let index = IVFFlatIndex(metric: metric, coarseCentroids: coarse.centroids, listOffsets: offsets, ids: ids, vectors: stored, source: source.name)
        return (index, stats)
    }

    /// The `k` nearest stored vectors of each query by exact distances in its `nprobe` nearest
    /// cells. `refine` and `base` have nothing to add (the distances are exact) and are ignored.
    public func search(_ queries: FloatMatrix, config: IVFPQSearchConfig, base: FloatMatrix? = nil) throws -> (NeighborTable, IVFPQIndex.SearchStats) {
        let started = ProgressDisplay.now()
        let prepared = try preparedQueries(queries, k: config.k)
        guard config.nprobe >= 1 else { throw SimjobError("nprobe must be at least 1 (got \(config.nprobe))") }
        let nprobe = min(config.nprobe, nlist)
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let cells = try ExactKNN.nearestScores(
            queries: ExactKNN.Chunk(vectors: prepared, start: 0), base: coarseChunk, metric: internalMetric, k: nprobe, threads: threads)
        let result = NeighborLists(rows: queries.rows, k: config.k)
        let blockSize = 32
        let blocks = (queries.rows + blockSize - 1) / blockSize
        let workers = min(threads, max(blocks, 1))
        var scanned = [Int](repeating: 0, count: workers)
        let d = dimension, metric = metric
        try scanned.withUnsafeMutableBufferPointer { scannedBuffer in
            let shared = UnsafeSendable(scannedBuffer.baseAddress!)
            try BlockedJoin.run(items: blocks, threads: workers) { block, worker in
                var count = 0
                for query in (block * blockSize)..<min((block + 1) * blockSize, queries.rows) {
                    let q = prepared.row(query)
                    for probe in 0..<nprobe {
                        let cell = Int(cells.ids[query * nprobe + probe])
                        guard cell >= 0 else { continue }
                        for entry in listOffsets[cell]..<listOffsets[cell + 1] {
                            // Unit vectors for angular: 1 - cos = ||q - x||^2 / 2.
                            result.insert(row: query, score: metric.preparedScore(q, vectors.row(entry), dimension: d), id: ids[entry])
                        }
                        count += listOffsets[cell + 1] - listOffsets[cell]
                    }
                }
                shared.value[worker.index] += count
            }
        }
        try Cancellation.check()
        var stats = IVFPQIndex.SearchStats()
        stats.queries = queries.rows
        stats.codesScanned = scanned.reduce(0, +)
        let table = NeighborTable(converting: result, metric: metric)
        Invariants.check(table, idLimit: count, selfJoin: false, what: "IVF-Flat search")
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }
}
