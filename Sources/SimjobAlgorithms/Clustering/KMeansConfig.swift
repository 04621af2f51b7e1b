import SimjobBLAS
import SimjobKernels

/// Settings of k-means (`simjob kmeans`, and the coarse and product quantizers of IVF-PQ).
/// Defaults follow FAISS's `ClusteringParameters` where it has one.
public struct KMeansConfig: Codable, Sendable, Equatable {
    public enum Initialization: String, Codable, Sendable, CaseIterable {
        /// k distinct training points drawn at random (FAISS's choice).
        case random
        /// k-means++ (Arthur and Vassilvitskii, 2007): each next centroid drawn with probability
        /// proportional to its squared distance from the nearest centroid chosen so far.
        case kmeansPlusPlus = "kmeans++"
    }

    /// Number of centroids. Default 256.
    public var k: Int = 256
    /// Lloyd iterations (assign, then update). Default 20.
    public var iterations: Int = 20
    /// How the first centroids are chosen. Default random.
    public var initialization: Initialization = .random
    /// Training sets above `k * maxPointsPerCentroid` points are subsampled (seeded) to that
    /// size, and the log says so. 0 disables it. Default 256, as FAISS.
    public var maxPointsPerCentroid: Int = 256
    /// Normalise centroids to unit length after every update (for angular data). Default false.
    public var spherical: Bool = false
    /// Independent runs with seeds `seed`, `seed + 1`, ...; the lowest final objective wins.
    /// Default 1.
    public var restarts: Int = 1
    /// Stop early once the objective improves by less than this fraction in one iteration;
    /// 0 always runs every iteration. Default 0.
    public var tolerance: Double = 0
    /// Seed of sampling, initialisation and empty-cluster repair: the same seed gives
    /// bit-identical centroids at any thread count. Default 1234, as FAISS.
    public var seed: UInt64 = 1234
    /// Worker threads; nil uses every core.
    public var threads: Int? = nil
    /// The assignment's product: fp32, int8, bf16 or auto (see `GEMMChoice`). Assignments are
    /// the same with each: candidates are re-scored exactly (`NearestCentroid`). Default auto.
    public var gemm: GEMMChoice = .auto

    public init(k: Int = 256) { self.k = k }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case k, iterations, initialization, maxPointsPerCentroid = "max_points_per_centroid", spherical
        case restarts, tolerance, seed, threads, gemm
    }
}

/// One k-means iteration, as the progress display and the report show it.
public struct KMeansIterationStats: Sendable {
    /// Iteration number, from 0.
    public var iteration: Int
    /// Sum of squared distances from every point to its assigned centroid (before the update).
    public var objective: Double
    /// `k * sum(size^2) / n^2`: 1 for equal cluster sizes, larger when unbalanced.
    public var imbalance: Double
    /// Empty clusters repaired by splitting a large one.
    public var splits: Int
    /// Wall time of the iteration, in seconds.
    public var seconds: Double
}

/// What a k-means run produced.
public struct KMeansResult: @unchecked Sendable {
    /// `k x d` centroids.
    public var centroids: FloatMatrix
    /// The statistics of the winning run's iterations.
    public var iterations: [KMeansIterationStats]
    /// Final objective of every restart, in order.
    public var restartObjectives: [Double]
    /// Training points actually used (after subsampling).
    public var sampleSize: Int
    /// Points per cluster after the last update, empty clusters repaired (FAISS's bookkeeping:
    /// a split cluster's count is shared between the two halves).
    public var clusterSizes: [Int]
    public var seconds: Double

    public var objective: Double { iterations.last?.objective ?? .infinity }
}
