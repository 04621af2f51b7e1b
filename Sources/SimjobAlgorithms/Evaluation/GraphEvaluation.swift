import Foundation
import SimjobHDF5
import SimjobKernels

/// Recall of a k-NN graph (`knn_graph/neighbors`) against an exact one, with the definitions of
/// `Recall`: every row of the graph is a query whose answers are its listed neighbours.
public enum GraphEvaluation {
    public struct Result: Sendable {
        public var scores: Recall.Scores
        public var rows: Int
        public var sampled: Int
        public var k: Int
        public var metric: Metric
    }

    /// Scores `graphPath` against `truthPath` on `sample` rows (seeded; nil: every row). The
    /// vectors come from `input`, else from the `source` attribute the truth graph carries.
    public static func run(graph graphPath: String, truth truthPath: String, input: DatasetReference?, sample: Int?, seed: UInt64 = 1) throws -> Result {
        let graphFile = try HDF5File.open(graphPath), truthFile = try HDF5File.open(truthPath)
        for (file, path) in [(graphFile, graphPath), (truthFile, truthPath)] where !file.isDataset("knn_graph/neighbors") {
            throw SimjobError("\(path): no knn_graph/neighbors (written by simjob knn-graph)")
        }
        let graphIDs = try graphFile.dataset("knn_graph/neighbors")
        let truthIDs = try truthFile.dataset("knn_graph/neighbors")
        let truthDistances = try truthFile.dataset("knn_graph/distances")
        guard graphIDs.rows == truthIDs.rows else {
            throw SimjobError("\(graphPath) has \(graphIDs.rows) rows but \(truthPath) has \(truthIDs.rows)")
        }
        let k = graphIDs.columns
        guard truthIDs.columns >= k else { throw SimjobError("\(truthPath): k = \(truthIDs.columns) is smaller than the graph's \(k)") }
        guard let metricName = try truthFile.attribute("metric", of: "knn_graph")?.stringValue, let metric = Metric(name: metricName) else {
            throw SimjobError("\(truthPath): knn_graph has no metric attribute")
        }
        let reference: DatasetReference
        if let input {
            reference = input
        } else if let source = try truthFile.attribute("source", of: "knn_graph")?.stringValue {
            reference = DatasetReference(parsing: source, defaultDataset: "train")
        } else {
            throw SimjobError("\(truthPath): no source attribute; pass --input FILE[:DATASET] with the vectors")
        }
        let vectors = try VectorSource(reference)
        guard vectors.rows == graphIDs.rows else { throw SimjobError("\(reference) has \(vectors.rows) rows but the graphs have \(graphIDs.rows)") }
        let prepared = try vectors.readMatrix(0..<vectors.rows, metric: metric)
        let rows = sample.map { sampleIndices(min($0, vectors.rows), from: vectors.rows, seed: seed) } ?? Array(0..<vectors.rows)

        let allGraph = try graphIDs.readAll(as: Int64.self)
        let allTruthIDs = try truthIDs.readAll(as: Int64.self)
        let allTruthDistances = try truthDistances.readAll(as: Float.self)
        let width = truthIDs.columns
        var ids = [Int32](), truthIDRows = [Int32](), truthDistanceRows = [Float]()
        for row in rows {
            ids += allGraph[(row * k)..<((row + 1) * k)].map { Int32(truncatingIfNeeded: $0) }
            truthIDRows += allTruthIDs[(row * width)..<((row + 1) * width)].map { Int32(truncatingIfNeeded: $0) }
            truthDistanceRows += allTruthDistances[(row * width)..<((row + 1) * width)]
        }
        let distances = Recall.recomputeDistances(ids: ids, queries: prepared, base: prepared, k: k, metric: metric, rows: rows)
        let scores = Recall.score(
            resultIDs: ids, resultDistances: distances, truthIDs: truthIDRows, truthDistances: truthDistanceRows,
            queries: rows.count, k: k, truthWidth: width)
        return Result(scores: scores, rows: vectors.rows, sampled: rows.count, k: k, metric: metric)
    }
}
