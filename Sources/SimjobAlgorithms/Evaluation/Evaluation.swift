import Foundation
import Logging
import SimjobHDF5
import SimjobKernels

/// Settings of `simjob evaluate`.
public struct EvaluationConfig: Codable, Sendable, Equatable {
    /// Neighbours per query. Default 10.
    public var k: Int = 10
    /// nprobe values to sweep. Default [1, 4, 16, 64].
    public var nprobe: [Int] = [1, 4, 16, 64]
    /// refine values to sweep (0: no refinement). Default [0].
    public var refine: [Int] = [0]
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
        case k, nprobe, refine, runs, latencyQueries = "latency_queries", includeExact = "include_exact", threads
    }
}

/// One evaluated setting.
public struct EvaluationRow: Sendable {
    public var algorithm: String
    public var name: String
    public var nprobe: Int
    public var refine: Int
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
    var neighbors: [Int32] = []
    var distances: [Float] = []
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

/// Recall / speed sweeps of an IVF-PQ index over nprobe and refine, in ann-benchmarks' terms.
public enum Evaluation {
    public static func run(
        dataset path: String, indexPath: String, config: EvaluationConfig, logger: Logger? = nil
    ) throws -> EvaluationReport {
        guard config.k >= 1 else { throw SimjobError("evaluate: k must be at least 1") }
        guard !config.nprobe.isEmpty, config.nprobe.allSatisfy({ $0 >= 1 }) else { throw SimjobError("evaluate: every nprobe must be at least 1") }
        guard config.refine.allSatisfy({ $0 >= 0 }) else { throw SimjobError("evaluate: refine values must not be negative") }
        guard config.runs >= 1 else { throw SimjobError("evaluate: runs must be at least 1") }
        let index = try QuantizationOperations.loadIndex(indexPath)
        let indexFile = try HDF5File.open(indexPath)
        let buildSeconds = try indexFile.attribute("build_seconds", of: "index")?.doubleValue ?? 0
        let base = try VectorSource(DatasetReference(path: path, dataset: "train"), threads: config.threads)
        let querySource = try VectorSource(DatasetReference(path: path, dataset: "test"), threads: config.threads)
        guard base.rows == index.count, base.dimension == index.dimension else {
            throw SimjobError("\(path):train has shape (\(base.rows), \(base.dimension)) but the index holds \(index.count) vectors of dimension \(index.dimension)")
        }
        let truth = try GroundTruth(file: base.file, queries: querySource.rows, k: config.k)
        let metric = index.metric
        if let fileMetric = try base.fileMetric(), fileMetric != metric {
            throw SimjobError("\(path) says distance '\(fileMetric)' but the index was built for '\(metric)'")
        }
        let rawQueries = try querySource.readMatrix(0..<querySource.rows)
        let preparedQueries = try querySource.readMatrix(0..<querySource.rows, metric: metric)
        let baseVectors = try base.readMatrix(0..<base.rows, metric: metric)
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let latencyRows = sampleIndices(min(config.latencyQueries, querySource.rows), from: querySource.rows, seed: 7)

        var rows: [EvaluationRow] = []
        /// The scores of a result and its distances recomputed from the vectors (kept for the
        /// ann-benchmarks result files), computed once.
        func score(_ ids: [Int32]) -> (Recall.Scores, [Float]) {
            let distances = Recall.recomputeDistances(ids: ids, queries: preparedQueries, base: baseVectors, k: config.k, metric: metric)
            let scores = Recall.score(
                resultIDs: ids, resultDistances: distances, truthIDs: truth.ids, truthDistances: truth.distances,
                queries: querySource.rows, k: config.k, truthWidth: truth.width)
            return (scores, distances)
        }

        for refine in config.refine {
            for nprobe in config.nprobe {
                try Cancellation.check()
                var searchConfig = IVFPQSearchConfig(k: config.k, nprobe: nprobe, refine: refine)
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
                let name = "IVFPQ(nlist=\(index.nlist),m=\(index.pq.m),nbits=\(index.pq.nbits))" + (refine > 0 ? "+refine" : "")
                var row = EvaluationRow(
                    algorithm: "simjob-ivfpq", name: name, nprobe: nprobe, refine: refine,
                    recall: scores.knn, epsilonRecall: scores.epsilon, idRecall: scores.ids,
                    qps: stats.queriesPerSecond, bestSearchSeconds: stats.seconds,
                    p50Milliseconds: percentile(latencies, 0.50), p95Milliseconds: percentile(latencies, 0.95),
                    p99Milliseconds: percentile(latencies, 0.99),
                    candidates: Double(stats.codesScanned) / Double(max(querySource.rows, 1)))
                row.neighbors = ids
                row.distances = distances
                logger?.info("evaluate: nprobe=\(nprobe) refine=\(refine): recall \(String(format: "%.4f", scores.knn)), \(Int(stats.queriesPerSecond)) queries/s")
                rows.append(row)
            }
        }

        if config.includeExact {
            var exactConfig = ExactKNNConfig(k: config.k, metric: metric, threads: threads)
            exactConfig.block = 1024
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
                qps: Double(querySource.rows) / bestSeconds, bestSearchSeconds: bestSeconds,
                p50Milliseconds: .nan, p95Milliseconds: .nan, p99Milliseconds: .nan, candidates: Double(base.rows))
            row.neighbors = ids
            row.distances = distances
            rows.append(row)
        }

        let frontier = Pareto.frontier(recall: rows.map(\.recall), qps: rows.map(\.qps))
        for index in rows.indices { rows[index].pareto = frontier[index] }
        return EvaluationReport(
            dataset: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent, metric: metric,
            k: config.k, queries: querySource.rows, buildSeconds: buildSeconds, indexSizeBytes: index.sizeInBytes,
            indexDescription: "IVF-PQ nlist=\(index.nlist) m=\(index.pq.m) nbits=\(index.pq.nbits)", rows: rows)
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
struct GroundTruth {
    let ids: [Int32]
    let distances: [Float]
    let width: Int

    init(file: HDF5File, queries: Int, k: Int) throws {
        for name in ["neighbors", "distances"] where !file.isDataset(name) {
            throw SimjobError("\(file.path): no '\(name)' dataset; compute ground truth with: simjob groundtruth \(file.path) --k \(max(k, 100)) --output FILE")
        }
        let neighbors = try file.dataset("neighbors"), distances = try file.dataset("distances")
        guard neighbors.shape.count == 2, neighbors.shape == distances.shape, neighbors.rows == queries else {
            throw SimjobError("\(file.path): neighbors \(neighbors.shapeDescription) and distances \(distances.shapeDescription) must both be (\(queries), K)")
        }
        guard neighbors.columns >= k else {
            throw SimjobError("\(file.path):neighbors has \(neighbors.columns) columns, fewer than k = \(k)")
        }
        width = neighbors.columns
        ids = try neighbors.readAll(as: Int64.self).map { Int32(truncatingIfNeeded: $0) }
        self.distances = try distances.readAll(as: Float.self)
    }
}
