import Foundation
import Logging
import SimjobCore
import SimjobKernels

/// Rows split into k-means cells, with each row's nearest cells: the shared first step of the
/// approximate k-NN graph (rows search the cells they probe) and of fast dedup (rows join their
/// home cell and the cells within reach of the threshold).
///
/// The k-means runs on the rows themselves (subsampled as `KMeans` does); each row's `width`
/// nearest centroids come from one exact k-NN search of the rows against the centroids, so the
/// first of them is the row's home.
public struct CellPartition {
    /// How the partition is made.
    public struct Config: Sendable {
        /// Number of cells (clamped to 1...rows).
        public var cells: Int
        /// Nearest cells kept per row (clamped to 1...cells).
        public var width: Int
        /// k-means iterations. Default 10.
        public var iterations = 10
        /// k-means seed. Default 1.
        public var seed: UInt64 = 1
        /// Worker threads; nil uses every core.
        public var threads: Int? = nil
        /// The k-means's name in progress lines.
        public var label = "partitions"

        public init(cells: Int, width: Int) {
            self.cells = cells
            self.width = width
        }
    }

    public let cells: Int
    /// Nearest cells kept per row.
    public let width: Int
    public let centroids: FloatMatrix
    /// Per row, its `width` nearest cells, nearest first (row-major, rows x width).
    public let nearest: [Int32]
    /// Squared euclidean distance of each row to each of its nearest cells' centroids.
    public let squaredDistances: [Float]
    /// The rows whose nearest cell is each cell, ascending.
    public let members: [[Int32]]

    /// Partitions `vectors` (normalised already for angular): the k-means, then each row's
    /// nearest cells.
    public init(_ vectors: FloatMatrix, config: Config, logger: Logger? = nil) throws {
        let centroids = try Self.trainCentroids(vectors, config: config, logger: logger)
        try self.init(vectors, centroids: centroids, width: config.width, threads: config.threads)
    }

    /// The cells' centroids: a k-means of `vectors` (deterministic at any thread count).
    public static func trainCentroids(_ vectors: FloatMatrix, config: Config, logger: Logger? = nil) throws -> FloatMatrix {
        var kmeansConfig = KMeansConfig(k: max(1, min(config.cells, vectors.rows)))
        kmeansConfig.iterations = config.iterations
        kmeansConfig.seed = config.seed
        kmeansConfig.threads = config.threads
        // fp32: a reduced format would encode a copy of the training sample, outside the memory
        // plans of the approximate graph and fast dedup.
        kmeansConfig.gemm = .fp32
        var kmeans = KMeans(config: kmeansConfig, logger: logger)
        kmeans.label = config.label
        return try kmeans.train(vectors).centroids
    }

    /// The partition of `vectors` by given centroids (trained by `trainCentroids`, perhaps in
    /// another process): each row's `width` nearest, by one exact search.
    public init(_ vectors: FloatMatrix, centroids: FloatMatrix, width requested: Int, threads: Int?) throws {
        let rows = vectors.rows
        guard centroids.columns == vectors.columns, centroids.rows >= 1 else {
            throw SimjobError("cell partition: \(centroids.rows) centroids of dimension \(centroids.columns) for rows of dimension \(vectors.columns)")
        }
        cells = centroids.rows
        width = max(1, min(requested, cells))
        self.centroids = centroids
        let table = try ExactKNN.nearestScores(queries: ExactKNN.Chunk(vectors: vectors, start: 0),
                                               base: ExactKNN.Chunk(vectors: centroids, start: 0), metric: .euclidean, k: width, threads: threads)
        nearest = Array(UnsafeBufferPointer(start: table.ids, count: rows * width))
        squaredDistances = Array(UnsafeBufferPointer(start: table.distances, count: rows * width))
        var members = [[Int32]](repeating: [], count: cells)
        for row in 0..<rows { members[Int(nearest[row * width])].append(Int32(row)) }
        self.members = members
    }
}
