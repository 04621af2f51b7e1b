import Foundation
import Logging
import SimjobKernels

/// Settings of `simjob evaluate`.
public struct EvaluationConfig: Codable, Sendable, Equatable {
    /// Neighbours per query. Default 10.
    public var k: Int = 10
    /// nprobe values to sweep. Default [1, 4, 16, 64].
    public var nprobe: [Int] = [1, 4, 16, 64]
    /// refine values to sweep (0: no refinement). Default [0].
    public var refine: [Int] = [0]
    /// HNSW indexes: ef values to sweep (nprobe and refine do not apply). Default [16, 32, 64, 128].
    public var ef: [Int] = [16, 32, 64, 128]
    /// LSH indexes: buckets probed per table, to sweep (nprobe and refine do not apply).
    /// Default [1, 2, 4, 8, 16, 32].
    public var probes: [Int] = [1, 2, 4, 8, 16, 32]
    /// Random-projection trees: candidates to collect (Annoy's search_k), to sweep (nprobe and
    /// refine do not apply). Default [100, 500, 1000, 2000, 5000, 10000].
    public var searchK: [Int] = [100, 500, 1000, 2000, 5000, 10000]
    /// Batch runs per setting; the fastest gives the queries per second, as ann-benchmarks
    /// takes the best of its runs. Default 3.
    public var runs: Int = 3
    /// Queries timed one at a time (single thread) for latency percentiles, drawn with a fixed
    /// seed; 0 skips them. Default 1,000.
    public var latencyQueries: Int = 1_000
    /// Also evaluate exact search (the recall 1.0 reference). Default false.
    public var includeExact: Bool = false
    /// Worker threads for batch search; nil uses every core.
    public var threads: Int? = nil

    public init() {}

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case k, nprobe, refine, ef, probes, searchK = "search_k", runs, latencyQueries = "latency_queries", includeExact = "include_exact", threads
    }
}

/// One evaluated setting.
public struct EvaluationRow: Sendable {
    public var algorithm: String
    public var name: String
    public var nprobe: Int
    public var refine: Int
    /// HNSW's beam width (0 for other indexes).
    public var ef: Int = 0
    /// LSH's buckets per table (0 for other indexes).
    public var probes: Int = 0
    /// Random-projection trees' candidates per query (0 for other indexes).
    public var searchK: Int = 0
    /// The index the row searched (its summary), its build time and size: a sweep over several
    /// indexes holds rows of each.
    public var index: String = ""
    public var buildSeconds: Double = 0
    public var indexSizeBytes: Int = 0
    public var recall: Double
    public var epsilonRecall: Double
    public var idRecall: Double
    public var qps: Double
    /// Fastest batch time, seconds.
    public var bestSearchSeconds: Double
    public var p50Milliseconds: Double
    public var p95Milliseconds: Double
    public var p99Milliseconds: Double
    /// Stored vectors scored per query (codes scanned; the whole set for exact search).
    public var candidates: Double
    public var pareto = false
    /// The result of the fastest run, for ann-benchmarks result files.
    public var neighbors: [Int32] = []
    public var distances: [Float] = []
}

/// Everything `evaluate` measured.
public struct EvaluationReport: Sendable {
    public var dataset: String
    public var metric: Metric
    public var k: Int
    public var queries: Int
    public var buildSeconds: Double
    public var indexSizeBytes: Int
    public var indexDescription: String
    public var rows: [EvaluationRow]
}

/// What an evaluation runs on, read by the operations layer: the index, the base vectors
/// (prepared for its metric), the queries raw and prepared, and the ground truth.
public struct EvaluationInputs {
    public var dataset: String
    public var index: any SearchableIndex
    public var buildSeconds: Double
    public var base: FloatMatrix
    public var rawQueries: FloatMatrix
    public var preparedQueries: FloatMatrix
    public var truth: GroundTruth

    public init(dataset: String, index: any SearchableIndex, buildSeconds: Double, base: FloatMatrix, rawQueries: FloatMatrix,
                preparedQueries: FloatMatrix, truth: GroundTruth) {
        self.dataset = dataset
        self.index = index
        self.buildSeconds = buildSeconds
        self.base = base
        self.rawQueries = rawQueries
        self.preparedQueries = preparedQueries
        self.truth = truth
    }
}

/// Recall / speed sweeps of an IVF-PQ index over nprobe and refine, in ann-benchmarks' terms.
public enum Evaluation {
    /// Checks the settings alone (before any file is read).
    public static func validate(_ config: EvaluationConfig) throws {
        guard config.k >= 1 else { throw SimjobError("evaluate: k must be at least 1") }
        guard !config.nprobe.isEmpty, config.nprobe.allSatisfy({ $0 >= 1 }) else { throw SimjobError("evaluate: every nprobe must be at least 1") }
        guard config.refine.allSatisfy({ $0 >= 0 }) else { throw SimjobError("evaluate: refine values must not be negative") }
        guard !config.ef.isEmpty, config.ef.allSatisfy({ $0 >= 1 }) else { throw SimjobError("evaluate: every ef must be at least 1") }
        guard !config.probes.isEmpty, config.probes.allSatisfy({ $0 >= 1 }) else { throw SimjobError("evaluate: every probes value must be at least 1") }
        guard !config.searchK.isEmpty, config.searchK.allSatisfy({ $0 >= 1 }) else { throw SimjobError("evaluate: every search_k must be at least 1") }
        guard config.runs >= 1 else { throw SimjobError("evaluate: runs must be at least 1") }
    }

    /// The sweep: every refine x nprobe setting (and exact search with `includeExact`), scored
    /// against the ground truth, with the Pareto frontier marked.
    public static func run(_ inputs: EvaluationInputs, config: EvaluationConfig, logger: Logger? = nil) throws -> EvaluationReport {
        try validate(config)
        let index = inputs.index, metric = index.metric
        let queries = inputs.rawQueries.rows
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let latencyRows = sampleIndices(min(config.latencyQueries, queries), from: queries, seed: 7)
        /// The scores of a result and its distances recomputed from the vectors (kept for the
        /// ann-benchmarks result files), computed once.
        func score(_ ids: [Int32]) -> (Recall.Scores, [Float]) {
            let distances = Recall.recomputeDistances(ids: ids, queries: inputs.preparedQueries, base: inputs.base, k: config.k, metric: metric)
            let scores = Recall.score(
                resultIDs: ids, resultDistances: distances, truthIDs: inputs.truth.ids, truthDistances: inputs.truth.distances,
                queries: queries, k: config.k, truthWidth: inputs.truth.width)
            return (scores, distances)
        }
        // The settings this index's family sweeps: HNSW its ef; LSH its probes, then the Hamming
        // ranking (refine > 0, as FAISS IndexLSH + IndexRefineFlat); random-projection trees their
        // search_k; IVF indexes nprobe x refine.
        typealias Setting = (nprobe: Int, refine: Int, ef: Int, probes: Int, searchK: Int, name: String)
        let settings: [Setting]
        switch inputs.index {
        case is HNSWIndex: settings = config.ef.map { (0, 0, $0, 0, 0, "ef=\($0)") }
        case is LSHIndex:
            settings = config.probes.map { (0, 0, 0, $0, 0, "probes=\($0)") }
                + config.refine.filter { $0 > 0 }.map { (0, $0, 0, 0, 0, "Hamming ranking, refine=\($0)") }
        case is RPForestIndex: settings = config.searchK.map { (0, 0, 0, 0, $0, "search_k=\($0)") }
        default: settings = config.refine.flatMap { refine in config.nprobe.map { ($0, refine, 0, 0, 0, "nprobe=\($0) refine=\(refine)") } }
        }
        var rows: [EvaluationRow] = []
        for setting in settings {
            try Cancellation.check()
            let row = try indexRow(inputs, nprobe: setting.nprobe, refine: setting.refine, ef: setting.ef, probes: setting.probes, searchK: setting.searchK, config: config,
                                   threads: threads, latencyRows: latencyRows, score: score)
            logger?.info("evaluate: \(setting.name): recall \(String(format: "%.4f", row.recall)), \(Int(row.qps)) queries/s")
            rows.append(row)
        }
        if config.includeExact { rows.append(try exactRow(inputs, config: config, threads: threads, score: score)) }
        for position in rows.indices where rows[position].algorithm != "simjob-exact" {
            rows[position].index = index.summary
            rows[position].buildSeconds = inputs.buildSeconds
            rows[position].indexSizeBytes = index.sizeInBytes
        }
        let frontier = Pareto.frontier(recall: rows.map(\.recall), qps: rows.map(\.qps))
        for position in rows.indices { rows[position].pareto = frontier[position] }
        return EvaluationReport(
            dataset: inputs.dataset, metric: metric, k: config.k, queries: queries, buildSeconds: inputs.buildSeconds,
            indexSizeBytes: index.sizeInBytes, indexDescription: index.summary, rows: rows)
    }

    /// One sweep over several indexes of the same set (one `EvaluationInputs` each, sharing
    /// their vectors and ground truth): every index's rows in one report, exact search once at
    /// the end, the Pareto frontier over all of them ("which family gives 0.9 recall fastest").
    public static func run(_ all: [EvaluationInputs], config: EvaluationConfig, logger: Logger? = nil) throws -> EvaluationReport {
        precondition(!all.isEmpty, "a sweep needs an index")
        if all.count == 1 { return try run(all[0], config: config, logger: logger) }
        // Exact search (when asked for) once, with the first index's rows.
        var later = config
        later.includeExact = false
        var rows: [EvaluationRow] = []
        for (position, inputs) in all.enumerated() {
            logger?.info("evaluate: \(inputs.index.summary)")
            rows += try run(inputs, config: position == 0 ? config : later, logger: logger).rows
        }
        let frontier = Pareto.frontier(recall: rows.map(\.recall), qps: rows.map(\.qps))
        for position in rows.indices { rows[position].pareto = frontier[position] }
        let first = all[0]
        return EvaluationReport(
            dataset: first.dataset, metric: first.index.metric, k: config.k, queries: first.rawQueries.rows, buildSeconds: first.buildSeconds,
            indexSizeBytes: first.index.sizeInBytes, indexDescription: all.map(\.index.summary).joined(separator: "; "), rows: rows)
    }

    /// One nprobe x refine setting: the best of `runs` batch searches, single-query latencies.
    static func indexRow(
        _ inputs: EvaluationInputs, nprobe: Int, refine: Int, ef: Int = 0, probes: Int = 0, searchK: Int = 0, config: EvaluationConfig, threads: Int, latencyRows: [Int],
        score: ([Int32]) -> (Recall.Scores, [Float])
    ) throws -> EvaluationRow {
        let index = inputs.index, rawQueries = inputs.rawQueries, baseVectors = inputs.base
        var searchConfig = IVFPQSearchConfig(k: config.k, nprobe: max(nprobe, 1), refine: refine)
        if ef > 0 { searchConfig.ef = ef }
        if probes > 0 { searchConfig.probes = probes }
        if searchK > 0 { searchConfig.searchK = searchK }
        searchConfig.threads = threads
        var best: (NeighborTable, IVFPQIndex.SearchStats)?
        for _ in 0..<config.runs {
            let run = try index.search(rawQueries, config: searchConfig, base: refine > 0 ? baseVectors : nil)
            if best == nil || run.1.seconds < best!.1.seconds { best = run }
        }
        let (table, stats) = best!
        // Single-query latency: one query at a time on one thread.
        var single = searchConfig
        single.threads = 1
        let latencies = try latencyRows.map { row -> Double in
            let one = FloatMatrix(rows: 1, columns: index.dimension)
            one.pointer.update(from: rawQueries.row(row), count: index.dimension)
            let started = ProgressDisplay.now()
            _ = try index.search(one, config: single, base: refine > 0 ? baseVectors : nil)
            return (ProgressDisplay.now() - started) * 1000
        }
        let ids = table.idArray
        let (scores, distances) = score(ids)
        let name = index.settingName(refine: refine)
        var row = EvaluationRow(
            algorithm: index.algorithm, name: name, nprobe: nprobe, refine: refine,
            recall: scores.knn, epsilonRecall: scores.epsilon, idRecall: scores.ids,
            qps: stats.queriesPerSecond, bestSearchSeconds: stats.seconds,
            p50Milliseconds: percentile(latencies, 0.50), p95Milliseconds: percentile(latencies, 0.95),
            p99Milliseconds: percentile(latencies, 0.99),
            candidates: Double(stats.codesScanned) / Double(max(rawQueries.rows, 1)))
        row.ef = ef
        row.probes = probes
        row.searchK = searchK
        row.neighbors = ids
        row.distances = distances
        return row
    }


    /// Exact search, the recall 1.0 reference: the best of `runs`.
    static func exactRow(_ inputs: EvaluationInputs, config: EvaluationConfig, threads: Int, score: ([Int32]) -> (Recall.Scores, [Float])) throws -> EvaluationRow {
        let metric = inputs.index.metric, rawQueries = inputs.rawQueries, baseVectors = inputs.base
        do {
            var exactConfig = ExactKNNConfig(k: config.k, metric: metric, threads: threads)
            exactConfig.block = ExactKNNConfig.defaultBlock
            var engine = ExactKNN(config: exactConfig)
            engine.progressStyle = .silent
            var bestSeconds = Double.infinity
            var table: NeighborTable?
            for _ in 0..<config.runs {
                let (result, stats) = try engine.search(queries: rawQueries, base: baseVectors, metric: metric)
                if stats.seconds < bestSeconds { bestSeconds = stats.seconds; table = result }
            }
            let ids = table!.idArray
            let (scores, distances) = score(ids)
            var row = EvaluationRow(
                algorithm: "simjob-exact", name: "exact", nprobe: 0, refine: 0,
                recall: scores.knn, epsilonRecall: scores.epsilon, idRecall: scores.ids,
                qps: Double(rawQueries.rows) / bestSeconds, bestSearchSeconds: bestSeconds,
                p50Milliseconds: .nan, p95Milliseconds: .nan, p99Milliseconds: .nan, candidates: Double(baseVectors.rows))
            row.neighbors = ids
            row.distances = distances
            return row
        }
    }


    /// The value below which `fraction` of `values` fall (nearest rank); NaN when empty.
    public static func percentile(_ values: [Double], _ fraction: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }
}

/// The exact neighbours of a dataset's queries: `neighbors` and `distances`, at least k wide.
public struct GroundTruth: Sendable {
    public let ids: [Int32]
    public let distances: [Float]
    public let width: Int

    public init(ids: [Int32], distances: [Float], width: Int) {
        self.ids = ids
        self.distances = distances
        self.width = width
    }
}
