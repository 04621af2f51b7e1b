import Foundation
import SimjobHDF5
import SimjobKernels

/// Recall of a k-NN graph (`knn_graph/neighbors`), with the definitions of `Recall`: every row
/// of the graph is a query whose answers are its listed neighbours. The truth is an exact graph
/// file, or, without one, the exact neighbours of the scored rows computed on the spot (rows
/// against the whole set, self excluded by id): the way to check an approximate graph of a set
/// too large for an exact graph.
public enum GraphEvaluation {
    public struct Result: Sendable {
        public var scores: Recall.Scores
        public var rows: Int
        public var sampled: Int
        public var k: Int
        public var metric: Metric
        /// Whether the truth was computed here rather than read from a file.
        public var computedTruth: Bool
    }

    /// Scores `graphPath` on `sample` rows (seeded; nil: every row) against `truthPath`, or
    /// against exact neighbours computed here when `truthPath` is nil. The vectors come from
    /// `input`, else from the graph's (or truth's) `source` attribute.
    public static func run(
        graph graphPath: String, truth truthPath: String?, input: DatasetReference?, sample: Int?, seed: UInt64 = 1, threads: Int? = nil
    ) throws -> Result {
        let graphFile = try HDF5File.open(graphPath)
        let truthFile = try truthPath.map { try HDF5File.open($0) }
        for (file, path) in [(graphFile, graphPath)] + (truthFile.map { [($0, truthPath!)] } ?? []) where !file.isDataset("knn_graph/neighbors") {
            throw SimjobError("\(path): no knn_graph/neighbors (written by simjob knn-graph)")
        }
        let described = truthFile ?? graphFile
        guard let metricName = try described.attribute("metric", of: "knn_graph")?.stringValue, let metric = Metric(name: metricName) else {
            throw SimjobError("\(described.path): knn_graph has no metric attribute")
        }
        let reference: DatasetReference
        if let input {
            reference = input
        } else if let source = try described.attribute("source", of: "knn_graph")?.stringValue {
            reference = DatasetReference(parsing: source, defaultDataset: "train")
        } else {
            throw SimjobError("\(described.path): no source attribute; pass --vectors FILE[:DATASET]")
        }
        let graphIDs = try graphFile.dataset("knn_graph/neighbors")
        let k = graphIDs.columns
        let vectors = try VectorSource(reference, threads: threads)
        guard vectors.rows == graphIDs.rows else { throw SimjobError("\(reference) has \(vectors.rows) rows but \(graphPath) has \(graphIDs.rows)") }
        let prepared = try vectors.readMatrix(0..<vectors.rows, metric: metric)
        let rows = sample.map { sampleIndices(min($0, vectors.rows), from: vectors.rows, seed: seed) } ?? Array(0..<vectors.rows)

        let allGraph = try graphIDs.readAll(as: Int64.self)
        var ids = [Int32]()
        for row in rows { ids += allGraph[(row * k)..<((row + 1) * k)].map { Int32(truncatingIfNeeded: $0) } }
        let (truthIDs, truthDistances, width) = try truthFile.map { try readTruth($0, rows: rows, graphRows: graphIDs.rows, k: k) }
            ?? computeTruth(prepared, rows: rows, k: k, metric: metric, threads: threads)
        let distances = Recall.recomputeDistances(ids: ids, queries: prepared, base: prepared, k: k, metric: metric, rows: rows)
        let scores = Recall.score(
            resultIDs: ids, resultDistances: distances, truthIDs: truthIDs, truthDistances: truthDistances,
            queries: rows.count, k: k, truthWidth: width)
        return Result(scores: scores, rows: vectors.rows, sampled: rows.count, k: k, metric: metric, computedTruth: truthFile == nil)
    }

    /// The truth graph's rows `rows`: (ids, distances, width).
    static func readTruth(_ file: HDF5File, rows: [Int], graphRows: Int, k: Int) throws -> ([Int32], [Float], Int) {
        let truthIDs = try file.dataset("knn_graph/neighbors"), truthDistances = try file.dataset("knn_graph/distances")
        guard truthIDs.rows == graphRows else { throw SimjobError("\(file.path) has \(truthIDs.rows) rows but the graph has \(graphRows)") }
        guard truthIDs.columns >= k else { throw SimjobError("\(file.path): k = \(truthIDs.columns) is smaller than the graph's \(k)") }
        let width = truthIDs.columns
        let allIDs = try truthIDs.readAll(as: Int64.self), allDistances = try truthDistances.readAll(as: Float.self)
        var ids = [Int32](), distances = [Float]()
        for row in rows {
            ids += allIDs[(row * width)..<((row + 1) * width)].map { Int32(truncatingIfNeeded: $0) }
            distances += allDistances[(row * width)..<((row + 1) * width)]
        }
        return (ids, distances, width)
    }

    /// Exact k nearest other rows of `rows`: a search of those rows against the whole set for
    /// k + 1, dropping each row's own id (or the last entry when duplicates pushed it out).
    static func computeTruth(_ vectors: FloatMatrix, rows: [Int], k: Int, metric: Metric, threads: Int?) throws -> ([Int32], [Float], Int) {
        guard k + 1 <= vectors.rows else { throw SimjobError("k = \(k) must be below the \(vectors.rows) rows") }
        let all = ExactKNN.Chunk(vectors: vectors, start: 0)
        let queries = ExactKNN.Chunk(gathering: rows.map(Int32.init), from: all)
        var config = ExactKNNConfig(k: k + 1, metric: metric, threads: threads)
        config.block = 1024
        var engine = ExactKNN(config: config)
        engine.progressStyle = .silent
        let table = try engine.nearestScores(queries: queries, base: all, metric: metric)
        var ids = [Int32](), distances = [Float]()
        for (position, row) in rows.enumerated() {
            var kept = 0
            for slot in 0...k where kept < k && Int(table.ids[position * (k + 1) + slot]) != row {
                ids.append(table.ids[position * (k + 1) + slot])
                distances.append(metric.reportedDistance(fromScore: table.distances[position * (k + 1) + slot]))
                kept += 1
            }
        }
        return (ids, distances, k)
    }

    /// Group `graph_evaluation`: per-row k-nn recall (`row_recall` float64 [sampled]) and
    /// attributes `recall`, `epsilon_recall`, `id_recall`, `rows`, `sampled`, `k`, `metric`,
    /// `graph`, `truth`.
    public static func write(_ result: Result, graph: String, truth: String?, to file: HDF5File) throws {
        let group = "graph_evaluation"
        try file.write("\(group)/row_recall", result.scores.perQuery, shape: [result.sampled])
        try file.setAttribute("recall", .double(result.scores.knn), on: group)
        try file.setAttribute("epsilon_recall", .double(result.scores.epsilon), on: group)
        try file.setAttribute("id_recall", .double(result.scores.ids), on: group)
        try file.setAttribute("rows", .int(Int64(result.rows)), on: group)
        try file.setAttribute("sampled", .int(Int64(result.sampled)), on: group)
        try file.setAttribute("k", .int(Int64(result.k)), on: group)
        try file.setAttribute("metric", .string(result.metric.rawValue), on: group)
        try file.setAttribute("graph", .string(graph), on: group)
        try file.setAttribute("truth", .string(truth ?? "computed"), on: group)
    }
}
