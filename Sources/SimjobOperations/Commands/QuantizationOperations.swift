import Foundation
import SimjobAlgorithms
import Logging
import SimjobHDF5
import SimjobKernels

/// `simjob kmeans`, `simjob train` and `simjob search`.
public enum QuantizationOperations {
    /// k-means of a dataset: `kmeans/centroids` float32 [k, d], `kmeans/assignments` int32 [n]
    /// (every row's nearest centroid), `kmeans/objective` float64 [iterations].
    public static func kmeans(
        input: DatasetReference, output: String, config: KMeansConfig, metric explicit: Metric?,
        logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> KMeansResult {
        let source = try VectorSource(input, threads: config.threads)
        let metric = try explicit ?? source.fileMetric() ?? .euclidean
        let out = try AtomicOutputFile(output)
        let cap = config.maxPointsPerCentroid > 0 ? config.k * config.maxPointsPerCentroid : source.rows
        if cap < source.rows {
            logger?.info("kmeans: sampling \(cap) of \(source.rows) rows (k = \(config.k) x max_points_per_centroid = \(config.maxPointsPerCentroid))")
        }
        let sample = try source.sampleRows(min(cap, source.rows), seed: config.seed, metric: metric)
        var kmeans = KMeans(config: config, logger: logger)
        kmeans.progressStyle = progressStyle
        var result = try kmeans.train(sample)
        result.sampleSize = sample.rows

        // Assign every row, streaming.
        let assigner = NearestCentroid(centroids: result.centroids, gemm: config.gemm)
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        var nearest = [Int32](repeating: 0, count: min(65_536, source.rows))
        let assignments = try out.file.createDataset("kmeans/assignments", type: .int32, shape: [source.rows])
        try source.forEachBlock(blockRows: 65_536) { range, block in
            let matrix = FloatMatrix(rows: range.count, columns: source.dimension)
            matrix.pointer.update(from: block, count: range.count * source.dimension)
            if metric.normalizesVectors { VectorKernels.normalizeRows(matrix.pointer, rows: range.count, dimension: source.dimension) }
            try nearest.withUnsafeMutableBufferPointer { buffer in
                try assigner.assign(matrix.pointer, rows: range.count, lda: source.dimension, rowNorms: nil, indices: buffer.baseAddress!, scores: nil, threads: threads)
                try assignments.writeRows(range.lowerBound, range.count, from: buffer.baseAddress!)
            }
        }
        try out.file.write("kmeans/centroids", result.centroids.array, shape: [config.k, source.dimension])
        try out.file.write("kmeans/objective", result.iterations.map(\.objective), shape: [result.iterations.count])
        try out.file.write("kmeans/imbalance", result.iterations.map(\.imbalance), shape: [result.iterations.count])
        try out.file.setAttribute("k", .int(Int64(config.k)), on: "kmeans")
        try out.file.setAttribute("metric", .string(metric.rawValue), on: "kmeans")
        try out.file.setAttribute("sample_size", .int(Int64(result.sampleSize)), on: "kmeans")
        try out.file.setAttribute("seconds", .double(result.seconds), on: "kmeans")
        try out.file.setAttribute("source", .string(input.description), on: "kmeans")
        try out.commit()
        return result
    }

    /// Trains an index of `config.type` (IVF-PQ or IVF-Flat) on a dataset and saves it (group
    /// `index`).
    public static func train(
        input: DatasetReference, output: String, config: IVFPQConfig, graph: String? = nil,
        logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> (any SearchableIndex, IVFPQTrainStats) {
        let source = try VectorSource(input, threads: config.threads)
        let out = try AtomicOutputFile(output)
        let metric = try source.resolveMetric(config.metric)
        let index: any SearchableIndex
        let stats: IVFPQTrainStats
        switch config.type {
        case .ivfpq: (index, stats) = try IVFPQIndex.train(source, metric: metric, config: config, logger: logger, progressStyle: progressStyle)
        case .ivfflat: (index, stats) = try IVFFlatIndex.train(source, metric: metric, config: config, logger: logger, progressStyle: progressStyle)
        case .hnsw: (index, stats) = try trainHNSW(source, metric: metric, config: config, graph: graph, logger: logger)
        case .lsh: (index, stats) = try LSHIndex.train(source, metric: metric, config: config, logger: logger)
        case .rptrees: (index, stats) = try RPForestIndex.train(source, metric: metric, config: config, logger: logger, progressStyle: progressStyle)
        }
        try IndexFile.save(index, to: out.file)
        try Provenance.stamp(out.file, from: input, artifact: "index", settings: config, threads: config.threads)
        try out.file.setAttribute("build_seconds", .double(stats.totalSeconds), on: "index")
        try out.file.setAttribute("index_size_bytes", .int(Int64(index.sizeInBytes)), on: "index")
        try out.commit()
        return (index, stats)
    }

    /// An HNSW index of `source` (read whole), its base layer from the k-NN graph in `graph` when
    /// given (checked against the set's shape and its provenance), else from one built here.
    static func trainHNSW(_ source: VectorSource, metric: Metric, config: IVFPQConfig, graph: String?, logger: Logger?) throws -> (HNSWIndex, IVFPQTrainStats) {
        let readStarted = ProgressDisplay.now()
        let vectors = try source.readMatrix(0..<source.rows, metric: metric)
        var stats = IVFPQTrainStats()
        stats.readSeconds = ProgressDisplay.now() - readStarted
        stats.vectors = source.rows
        var knn: (ids: [Int32], k: Int)?
        if let graph {
            let file = try HDF5File.open(graph)
            knn = try KNNGraphFile.ids(file, rows: source.rows, of: source.name)
            if let provenance = try Provenance.load(from: file), provenance.rows != source.rows || provenance.dimension != source.dimension {
                throw SimjobError("\(graph): built from \(provenance.rows) x \(provenance.dimension) vectors, not \(source.name)'s \(source.rows) x \(source.dimension)")
            }
        }
        var hnsw = HNSWConfig(m: config.m)
        hnsw.seed = config.seed
        hnsw.threads = config.threads
        let (index, seconds) = try HNSWIndex.build(vectors, metric: metric, graph: knn, config: hnsw, source: source.name, logger: logger)
        stats.totalSeconds = seconds + stats.readSeconds
        return (index, stats)
    }

    /// The `type` attribute of the index in `path` (IVFPQ, IVFFlat, HNSW, LSH, RPTrees).
    public static func indexType(_ path: String) throws -> String {
        try HDF5File.open(path).attribute("type", of: "index")?.stringValue ?? ""
    }

    /// Loads an index saved by `train` or `import`, of any type.
    public static func loadIndex(_ path: String) throws -> any SearchableIndex {
        try IndexFile.load(HDF5File.open(path))
    }

    /// The original vectors of an index, for refinement: from `base` when given, else from the
    /// `source` the index recorded. Normalised for angular.
    public static func baseVectors(for index: any SearchableIndex, base: DatasetReference?) throws -> FloatMatrix {
        guard let reference = base ?? (index.source.isEmpty ? nil : DatasetReference(parsing: index.source, defaultDataset: "train")) else {
            throw SimjobError("refine needs the original vectors: pass --base FILE[:DATASET]")
        }
        let source = try VectorSource(reference)
        guard source.rows == index.count, source.dimension == index.dimension else {
            throw SimjobError("\(reference): shape (\(source.rows), \(source.dimension)) does not match the index's \(index.count) vectors of dimension \(index.dimension)")
        }
        return try source.readMatrix(0..<source.rows, metric: index.metric)
    }

    /// Searches an index and writes `search/neighbors` and `search/distances`.
    public static func search(
        index indexPath: String, queries: DatasetReference, output: String, config: IVFPQSearchConfig, base: DatasetReference?
    ) throws -> IVFPQIndex.SearchStats {
        let index = try loadIndex(indexPath)
        let querySource = try VectorSource(queries, threads: config.threads)
        guard querySource.dimension == index.dimension else {
            throw SimjobError("\(queries): dimension \(querySource.dimension) does not match the index's \(index.dimension)")
        }
        let out = try AtomicOutputFile(output)
        let queryVectors = try querySource.readMatrix(0..<querySource.rows)
        let baseVectors = config.refine > 0 && index is IVFPQIndex ? try baseVectors(for: index, base: base) : nil
        let (table, stats) = try index.search(queryVectors, config: config, base: baseVectors)
        try OutputWriting.write(table, to: out.file, neighbors: "search/neighbors", distances: "search/distances")
        try out.file.setAttribute("k", .int(Int64(config.k)), on: "search")
        try out.file.setAttribute("nprobe", .int(Int64(config.nprobe)), on: "search")
        if let ef = config.ef { try out.file.setAttribute("ef", .int(Int64(ef)), on: "search") }
        if index is LSHIndex { try out.file.setAttribute("probes", .int(Int64(config.probes ?? 1)), on: "search") }
        if let forest = index as? RPForestIndex { try out.file.setAttribute("search_k", .int(Int64(forest.searchK(config))), on: "search") }
        try out.file.setAttribute("refine", .int(Int64(config.refine)), on: "search")
        try out.file.setAttribute("metric", .string(index.metric.rawValue), on: "search")
        try out.file.setAttribute("seconds", .double(stats.seconds), on: "search")
        try out.file.setAttribute("queries_per_second", .double(stats.queriesPerSecond), on: "search")
        try out.file.setAttribute("index", .string(indexPath), on: "search")
        try out.commit()
        return stats
    }
}
