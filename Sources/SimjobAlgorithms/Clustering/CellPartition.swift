import Foundation
import Logging
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

    /// Partitions `vectors` (normalised already for angular).
    public init(_ vectors: FloatMatrix, config: Config, logger: Logger? = nil) throws {
        let rows = vectors.rows
        cells = max(1, min(config.cells, rows))
        width = max(1, min(config.width, cells))
        var kmeansConfig = KMeansConfig(k: cells)
        kmeansConfig.iterations = config.iterations
        kmeansConfig.seed = config.seed
        kmeansConfig.threads = config.threads
        // fp32: a reduced format would encode a copy of the training sample, outside the memory
        // plans of the approximate graph and fast dedup.
        kmeansConfig.gemm = .fp32
        var kmeans = KMeans(config: kmeansConfig, logger: logger)
        kmeans.label = config.label
        centroids = try kmeans.train(vectors).centroids

        let table = try ExactKNN.nearestScores(queries: ExactKNN.Chunk(vectors: vectors, start: 0),
                                               base: ExactKNN.Chunk(vectors: centroids, start: 0), metric: .euclidean, k: width, threads: config.threads)
        nearest = Array(UnsafeBufferPointer(start: table.ids, count: rows * width))
        squaredDistances = Array(UnsafeBufferPointer(start: table.distances, count: rows * width))
        var members = [[Int32]](repeating: [], count: cells)
        for row in 0..<rows { members[Int(nearest[row * width])].append(Int32(row)) }
        self.members = members
    }
}
