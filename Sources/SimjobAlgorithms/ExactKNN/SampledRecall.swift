import Foundation
import SimjobBLAS
import SimjobKernels

/// A seeded sample of rows with their exact k nearest neighbours, to measure an approximate
/// graph's recall as it is built.
///
/// Recall is the ann-benchmarks measure: a listed neighbour counts when its distance is within
/// the true k-th distance (with a relative allowance of 1e-5 for rounding), so ties count.
/// The interval is over rows (each row's recall is one observation: neighbours of one row are
/// not independent): the mean plus or minus 1.96 standard errors, clamped to [0, 1].
public struct SampledRecall: Sendable {
    /// What a measurement found.
    public struct Measure: Sendable, Equatable {
        public var recall: Double
        public var low: Double
        public var high: Double
        public var rows: Int
    }

    public let rows: [Int]
    public let k: Int
    /// Per sampled row, its true neighbours (k ids) and the k-th true score.
    let truth: [Int32]
    let kthScore: [Float]

    /// The product of the sample's search: the reduced format auto's calibration prefers for
    /// this dimension (at least 2x sgemm's rate), from `minimumFlops` (the set's encoding is paid
    /// once per search: on Fashion-MNIST, 500 rows against 60,000 x 784, int8 took the sample
    /// from 0.27 s to 0.18 s); else fp32.
    static func product(rows: Int, base: Int, dimension: Int) throws -> GEMMChoice {
        let flops = 2 * Double(rows) * Double(base) * Double(dimension)
        guard flops >= minimumFlops else { return .fp32 }
        switch try GEMMCalibration.resolve(.auto, dimension: dimension, flops: max(flops, GEMMCalibration.minimumFlops)) {
        case .int8?: return .int8
        case .bf16?: return .bf16
        case nil: return .fp32
        }
    }

    /// Flops from which the sample's search may take a reduced product.
    static let minimumFlops = 1e10

    /// The exact neighbours of `size` seeded rows of `vectors` (normalised already for angular).
    /// `gemm` is the search's product (`product` picks it): int8 and bf16 give the same
    /// neighbours as fp32 (see `ReducedRows`), faster, at the cost of a reduced copy of the rows.
    public init(_ vectors: FloatMatrix, metric: Metric, k: Int, size: Int, seed: UInt64, threads: Int?, gemm: GEMMChoice = .fp32) throws {
        let n = vectors.rows
        rows = sampleIndices(min(size, n), from: n, seed: seed &+ 0x5EC0).sorted()
        self.k = k
        let all = ExactKNN.Chunk(vectors: vectors, start: 0)
        let width = min(k + 1, n)
        let table = try ExactKNN.nearestScores(queries: ExactKNN.Chunk(gathering: rows.map(Int32.init), from: all), base: all,
                                               metric: metric, k: width, threads: threads,
                                               gemm: gemm)
        var truth = [Int32](repeating: -1, count: rows.count * k)
        var kth = [Float](repeating: .infinity, count: rows.count)
        for (s, row) in rows.enumerated() {
            // The row itself is among its k + 1 nearest (at score 0, up to exact duplicates).
            var taken = 0
            for slot in 0..<width where taken < k {
                let id = table.ids[s * width + slot]
                guard id >= 0, Int(id) != row else { continue }
                truth[s * k + taken] = id
                kth[s] = table.distances[s * width + slot]
                taken += 1
            }
        }
        self.truth = truth
        kthScore = kth
    }

    /// The recall of `lists` (internal scores, as the engines keep them) on the sample.
    public func measure(_ lists: NeighborLists) -> Measure {
        var perRow = [Double]()
        perRow.reserveCapacity(rows.count)
        for (s, row) in rows.enumerated() {
            let bound = kthScore[s] + 1e-5 * max(abs(kthScore[s]), 1e-3)
            var hits = 0
            for slot in 0..<lists.k {
                let id = lists.ids[row * lists.k + slot]
                if id == NeighborLists.emptyID { break }
                if lists.scores[row * lists.k + slot] <= bound { hits += 1 }
            }
            perRow.append(Double(min(hits, k)) / Double(k))
        }
        return Self.summarize(perRow)
    }

    /// The recall of the best k of each sampled row's candidates (original row ids, given by
    /// `candidates(row)`) once they are scored exactly from the full vectors (`vector(row)`,
    /// normalised already for angular): what re-scoring will make of the lists.
    public func measure(row vector: (Int) -> UnsafeMutablePointer<Float>, dimension d: Int, metric: Metric, candidates: (Int) -> [Int32]) -> Measure {
        var perRow = [Double]()
        perRow.reserveCapacity(rows.count)
        for (s, row) in rows.enumerated() {
            let bound = kthScore[s] + 1e-5 * max(abs(kthScore[s]), 1e-3)
            let scores = candidates(row).map { metric.exactScore(vector(row), vector(Int($0)), dimension: d) }.sorted()
            let hits = scores.prefix(k).filter { $0 <= bound }.count
            perRow.append(Double(hits) / Double(k))
        }
        return Self.summarize(perRow)
    }

    static func summarize(_ perRow: [Double]) -> Measure {
        guard !perRow.isEmpty else { return Measure(recall: 1, low: 1, high: 1, rows: 0) }
        let count = Double(perRow.count)
        let mean = perRow.reduce(0, +) / count
        let variance = perRow.count > 1 ? perRow.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (count - 1) : 0
        let half = 1.96 * (variance / count).squareRoot()
        return Measure(recall: mean, low: max(0, mean - half), high: min(1, mean + half), rows: perRow.count)
    }
}
