import Dispatch
import Foundation
import SimjobBLAS
import SimjobKernels
import Synchronization

/// The nearest centroid of every vector: k-means assignment, IVF cell assignment, PQ encoding.
///
/// Blocked like the exact engine (one single-threaded sgemm per tile, workers under Dispatch),
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
    ) {
        guard rows > 0 else { return }
        BLASRuntime.setThreads(1)
        let k = centroids.rows, d = centroids.columns
        let blocks = (rows + Self.rowBlock - 1) / Self.rowBlock
        let next = Atomic<Int>(0)
        let shared = UnsafeSendable((vectors, indices, scores, rowNorms))
        DispatchQueue.concurrentPerform(iterations: max(1, min(threads, blocks))) { _ in
            let (vectors, indices, scores, rowNorms) = shared.value
            let tile = UnsafeMutablePointer<Float>.allocate(capacity: Self.rowBlock * Self.columnBlock)
            let best = UnsafeMutablePointer<Float>.allocate(capacity: Self.rowBlock)
            defer {
                tile.deallocate()
                best.deallocate()
            }
            while true {
                let block = next.add(1, ordering: .relaxed).oldValue
                guard block < blocks else { break }
                let first = block * Self.rowBlock
                let count = min(Self.rowBlock, rows - first)
                best.initialize(repeating: .infinity, count: count)
                (indices + first).initialize(repeating: Int32.max, count: count)
                var column = 0
                while column < k {
                    let width = min(Self.columnBlock, k - column)
                    BLAS.gemmABt(
                        m: count, n: width, k: d, a: vectors + first * lda, lda: lda,
                        b: centroids.row(column), ldb: d, c: tile, ldc: width)
                    ClusterKernels.nearestColumns(
                        dots: tile, ldc: width, rows: count, columns: width, columnStart: column,
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
