import Foundation
import SimjobKernels

/// Recall as ann-benchmarks defines it (`ann_benchmarks/plotting/metrics.py`), so simjob's
/// numbers compare with published ones:
///
/// - **k-nn recall**: a returned neighbour counts when its distance to the query, recomputed
///   with the true metric from the original vectors, is at most the k-th true distance + 1e-3;
/// - **epsilon recall**: the same with the threshold `(1 + 0.01) x` the k-th true distance;
/// - **id recall**: |returned ids ∩ true k nearest ids| / k.
///
/// Each query scores `hits / k`; the recall is the mean over queries. Positions holding -1
/// (fewer than k results) are misses, and a repeated id counts once: its repeats are misses.
public enum Recall {
    public static let knnEpsilon: Float = 1e-3
    public static let relativeEpsilon: Float = 0.01

    public struct Scores: Sendable, Equatable {
        public var knn: Double
        public var epsilon: Double
        public var ids: Double
        /// Per-query k-nn recall, for distributions.
        public var perQuery: [Double]
    }

    /// Scores `k` results per query.
    ///
    /// - `resultIDs`, `resultDistances`: `queries x k`, the distances recomputed from the
    ///   original vectors (not the index's estimates);
    /// - `truthIDs`, `truthDistances`: `queries x truthWidth` (`truthWidth >= k`), exact.
    public static func score(
        resultIDs: [Int32], resultDistances: [Float], truthIDs: [Int32], truthDistances: [Float],
        queries: Int, k: Int, truthWidth: Int
    ) -> Scores {
        precondition(truthWidth >= k && resultIDs.count == queries * k && truthDistances.count == queries * truthWidth)
        var knnTotal = 0.0, epsilonTotal = 0.0, idTotal = 0.0
        var perQuery = [Double](repeating: 0, count: queries)
        for query in 0..<queries {
            let kth = truthDistances[query * truthWidth + k - 1]
            let knnThreshold = kth + knnEpsilon
            let epsilonThreshold = kth * (1 + relativeEpsilon)
            let trueSet = Set(truthIDs[(query * truthWidth)..<(query * truthWidth + k)])
            var seen = Set<Int32>()
            var knnHits = 0, epsilonHits = 0, idHits = 0
            for slot in 0..<k {
                let id = resultIDs[query * k + slot]
                guard id >= 0, seen.insert(id).inserted else { continue }
                let distance = resultDistances[query * k + slot]
                if distance <= knnThreshold { knnHits += 1 }
                if distance <= epsilonThreshold { epsilonHits += 1 }
                if trueSet.contains(id) { idHits += 1 }
            }
            perQuery[query] = Double(knnHits) / Double(k)
            knnTotal += perQuery[query]
            epsilonTotal += Double(epsilonHits) / Double(k)
            idTotal += Double(idHits) / Double(k)
        }
        let count = Double(max(queries, 1))
        return Scores(knn: knnTotal / count, epsilon: epsilonTotal / count, ids: idTotal / count, perQuery: perQuery)
    }

    /// Distances from each query to its returned neighbours, recomputed with the true metric
    /// (`Metric.exactScore`, reported as files report them). `queries` and `base` are prepared
    /// as the metric needs (unit length for angular). Missing ids (-1) get +infinity.
    public static func recomputeDistances(
        ids: [Int32], queries: FloatMatrix, base: FloatMatrix, k: Int, metric: Metric, rows: [Int]? = nil
    ) -> [Float] {
        let queryRows = rows ?? Array(0..<queries.rows)
        var distances = [Float](repeating: .infinity, count: queryRows.count * k)
        for (position, query) in queryRows.enumerated() {
            for slot in 0..<k {
                let id = ids[position * k + slot]
                guard id >= 0, Int(id) < base.rows else { continue }
                let score = metric.exactScore(queries.row(query), base.row(Int(id)), dimension: base.columns)
                distances[position * k + slot] = metric.reportedDistance(fromScore: score)
            }
        }
        return distances
    }
}

/// The settings that no other setting beats on both recall and speed.
public enum Pareto {
    /// `frontier[i]` is true when no j has `recall[j] >= recall[i]` and `qps[j] >= qps[i]` with
    /// one of them strictly greater.
    public static func frontier(recall: [Double], qps: [Double]) -> [Bool] {
        recall.indices.map { i in
            !recall.indices.contains { j in
                j != i && recall[j] >= recall[i] && qps[j] >= qps[i] && (recall[j] > recall[i] || qps[j] > qps[i])
            }
        }
    }
}
