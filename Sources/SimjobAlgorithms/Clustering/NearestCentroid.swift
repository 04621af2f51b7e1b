import Dispatch
import Foundation
import SimjobBLAS
import SimjobKernels
import Synchronization

/// The nearest centroid of every vector: k-means assignment, IVF cell assignment, PQ encoding.
///
/// Blocked like the exact engine, on the same driver (`BlockedJoin`: one single-threaded sgemm
/// per tile, workers under Dispatch, cancellation per block of rows),
/// but with a branch-free argmin over each tile instead of top-k lists: with one neighbour
/// wanted, a running lane-wise minimum beats candidate lists by a wide margin. Each row's
/// result is independent of the others and of the thread count.
public final class NearestCentroid: @unchecked Sendable {
    /// Rows (vectors) per tile. 512: a 512 x 2048 tile is 4 MiB.
    static let rowBlock = 512
    /// Columns (centroids) per tile.
    static let columnBlock = 2048

    public let centroids: FloatMatrix
    /// `||c||^2` for squared L2, 0 for inner product.
    let columnTerms: UnsafeMutablePointer<Float>
    let dotFactor: Float
    public let innerProduct: Bool

    /// `innerProduct` picks the centroid of largest inner product; otherwise the nearest in L2.
    public init(centroids: FloatMatrix, innerProduct: Bool = false) {
        self.centroids = centroids
        self.innerProduct = innerProduct
        columnTerms = .allocate(capacity: max(centroids.rows, 1))
        if innerProduct {
            columnTerms.initialize(repeating: 0, count: max(centroids.rows, 1))
            dotFactor = -1
        } else {
            VectorKernels.squaredNorms(centroids.pointer, rows: centroids.rows, dimension: centroids.columns, into: columnTerms)
            dotFactor = -2
        }
    }

    deinit { columnTerms.deallocate() }

    /// Assigns `rows` vectors (row-major, `lda` floats apart, `centroids.columns` used).
    /// `scores[i]` receives `||x_i - c||^2` (clamped at 0; `rowNorms` must hold `||x_i||^2`),
    /// or `-x_i . c` for inner product (`rowNorms` unused).
    public func assign(
        _ vectors: UnsafePointer<Float>, rows: Int, lda: Int, rowNorms: UnsafePointer<Float>?,
        indices: UnsafeMutablePointer<Int32>, scores: UnsafeMutablePointer<Float>?, threads: Int
    ) throws {
        guard rows > 0 else { return }
        let k = centroids.rows, d = centroids.columns
        let blocks = (rows + Self.rowBlock - 1) / Self.rowBlock
        let shared = UnsafeSendable((vectors, indices, scores, rowNorms))
        // The driver's scratch is block x block = 1024^2 floats, a 512 x 2048 tile.
        try BlockedJoin.run(items: blocks, threads: threads, block: 1024) { block, worker in
            let (vectors, indices, scores, rowNorms) = shared.value
            let first = block * Self.rowBlock
            let count = min(Self.rowBlock, rows - first)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.rowBlock) { bestBuffer in
                let best = bestBuffer.baseAddress!
                best.initialize(repeating: .infinity, count: count)
                (indices + first).initialize(repeating: Int32.max, count: count)
                var column = 0
                while column < k {
                    let width = min(Self.columnBlock, k - column)
                    BLAS.gemmABt(
                        m: count, n: width, k: d, a: vectors + first * lda, lda: lda,
                        b: centroids.row(column), ldb: d, c: worker.scratch, ldc: width)
                    ClusterKernels.nearestColumns(
                        dots: worker.scratch, ldc: width, rows: count, columns: width, columnStart: column,
                        columnTerms: columnTerms + column, dotFactor: dotFactor,
                        bestScores: best, bestIndices: indices + first)
                    column += width
                }
                if let scores {
                    for r in 0..<count {
                        // ||x||^2 + (||c||^2 - 2 x.c); rounding can dip below 0 for x = c.
                        scores[first + r] = innerProduct ? best[r] : max(0, rowNorms![first + r] + best[r])
                    }
                }
            }
        }
    }
}
