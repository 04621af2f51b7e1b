import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobKernels

/// `simjob evaluate --graph` and the job's graph-evaluation step: reads a graph file, its
/// vectors and an exact graph (if given), scores it (`GraphEvaluation.score`) and writes group
/// `graph_evaluation`.
extension GraphEvaluation {
    /// Scores `graphPath` on `sample` rows (seeded; nil: every row) against `truthPath`, or
    /// against exact neighbours computed here when `truthPath` is nil. The vectors come from
    /// `input`, else from the graph's (or truth's) `source` attribute.
    public static func run(
        graph graphPath: String, truth truthPath: String?, input: DatasetReference?, sample: Int?, seed: UInt64 = 1, threads: Int? = nil
    ) throws -> Result {
        let graph = try KNNGraphFile.read(HDF5File.open(graphPath))
        let truthFile = try truthPath.map { try HDF5File.open($0) }
        let truthContents = try truthFile.map { try KNNGraphFile.read($0) }
        let described = truthContents ?? graph
        let describedPath = truthPath ?? graphPath
        guard let metric = described.metric else { throw SimjobError("\(describedPath): knn_graph has no metric attribute") }
        guard let reference = input ?? described.source else {
            throw SimjobError("\(describedPath): no source attribute; pass --vectors FILE[:DATASET]")
        }
        let graphIDs = graph.neighbors
        let k = graphIDs.columns
        let vectors = try VectorSource(reference, threads: threads)
        guard vectors.rows == graphIDs.rows else { throw SimjobError("\(reference) has \(vectors.rows) rows but \(graphPath) has \(graphIDs.rows)") }
        let prepared = try vectors.readMatrix(0..<vectors.rows, metric: metric)
        let rows = sample.map { sampleIndices(min($0, vectors.rows), from: vectors.rows, seed: seed) } ?? Array(0..<vectors.rows)

        let allGraph = try graphIDs.readAll(as: Int64.self)
        var ids = [Int32]()
        for row in rows { ids += allGraph[(row * k)..<((row + 1) * k)].map { Int32(truncatingIfNeeded: $0) } }
        let truth = try truthFile.map { try readTruth($0, rows: rows, graphRows: graphIDs.rows, k: k) }
        return try score(graphIDs: ids, k: k, rows: rows, vectors: prepared, metric: metric,
                         truth: truth.map { (ids: $0.0, distances: $0.1, width: $0.2) }, threads: threads)
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
