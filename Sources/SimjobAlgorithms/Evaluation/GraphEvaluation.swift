import Foundation
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

    /// Scores a graph's listed neighbours (`graphIDs`, `rows x k` for the scored `rows`) against
    /// `truth` (ids, distances, width for the same rows), or, when nil, against the exact
    /// neighbours of those rows computed here. `vectors` are the whole set, prepared for `metric`.
    public static func score(
        graphIDs ids: [Int32], k: Int, rows: [Int], vectors prepared: FloatMatrix, metric: Metric,
        truth: (ids: [Int32], distances: [Float], width: Int)?, threads: Int? = nil
    ) throws -> Result {
        let (truthIDs, truthDistances, width) = try truth.map { ($0.ids, $0.distances, $0.width) }
            ?? computeTruth(prepared, rows: rows, k: k, metric: metric, threads: threads)
        let distances = Recall.recomputeDistances(ids: ids, queries: prepared, base: prepared, k: k, metric: metric, rows: rows)
        let scores = Recall.score(
            resultIDs: ids, resultDistances: distances, truthIDs: truthIDs, truthDistances: truthDistances,
            queries: rows.count, k: k, truthWidth: width)
        return Result(scores: scores, rows: prepared.rows, sampled: rows.count, k: k, metric: metric, computedTruth: truth == nil)
    }

    /// Exact k nearest other rows of `rows`: a search of those rows against the whole set for
    /// k + 1, dropping each row's own id (or the last entry when duplicates pushed it out).
    static func computeTruth(_ vectors: FloatMatrix, rows: [Int], k: Int, metric: Metric, threads: Int?) throws -> ([Int32], [Float], Int) {
        guard k + 1 <= vectors.rows else { throw SimjobError("k = \(k) must be below the \(vectors.rows) rows") }
        let all = ExactKNN.Chunk(vectors: vectors, start: 0)
        let queries = ExactKNN.Chunk(gathering: rows.map(Int32.init), from: all)
        var config = ExactKNNConfig(k: k + 1, metric: metric, threads: threads)
        config.block = ExactKNNConfig.defaultBlock
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
}
