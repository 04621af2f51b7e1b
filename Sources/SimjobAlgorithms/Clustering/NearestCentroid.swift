import Dispatch
import Foundation
import SimjobBLAS
import SimjobKernels
import Synchronization

/// The nearest centroid of every vector: k-means assignment, IVF cell assignment, PQ encoding.
///
/// Blocked like the exact engine, on the same driver (`BlockedJoin`: one single-threaded
/// product per tile, workers under Dispatch, cancellation per block of rows). Two kernels:
///
/// - fp32 products (the default below 256 dimensions): a branch-free argmin of the sgemm
///   expansion `||c||^2 - 2 x.c` over each tile (`ClusterKernels.nearestColumns`), the fastest.
///   Its choice can differ from the exact nearest centroid only between centroids whose
///   distances agree to about 1e-5 relative (fp32 rounding of the expansion).
/// - int8 and bf16 products, or `exact`: each pair's estimate comes with a bound on its error
///   (fp32 rounding plus the reduced product's slack, see `ReducedRows`), and only centroids
///   within reach of the row's best are scored exactly from the two vectors
///   (`TileScan.nearest`). The nearest centroid by exact score wins, ties to the lower index:
///   int8, bf16 and exact fp32 give the same assignments, at any thread count.
///
/// Both give results independent of the thread count and of the split into tiles.
public final class NearestCentroid: @unchecked Sendable {
    /// Rows (vectors) per tile. 512: a 512 x 2048 tile is 4 MiB.
    static let rowBlock = 512
    /// Columns (centroids) per tile.
    static let columnBlock = 2048

    public let centroids: FloatMatrix
    /// `||c||^2` of every centroid.
    let centroidNorms: UnsafeMutablePointer<Float>
    public let innerProduct: Bool
    /// The product (`--gemm`); auto decides per call from the work's size.
    public let gemm: GEMMChoice
    /// The centroids encoded for a reduced product, made on first use.
    private var encoded: ReducedRows?
    private let encodeLock = NSLock()

    /// Assign by exact score with fp32 products too (what int8 and bf16 always do).
    public let exact: Bool
    /// Zeros, the fp32 kernel's column terms for inner product (nil for L2, whose terms are
    /// `centroidNorms`).
    private let zeros: UnsafeMutablePointer<Float>?
    /// The fp32 kernel's column terms: `||c||^2` for squared L2, 0 for inner product.
    var columnTerms: UnsafePointer<Float> { UnsafePointer(zeros ?? centroidNorms) }

    /// `innerProduct` picks the centroid of largest inner product; otherwise the nearest in L2.
    public init(centroids: FloatMatrix, innerProduct: Bool = false, gemm: GEMMChoice = .auto, exact: Bool = false) {
        self.centroids = centroids
        self.innerProduct = innerProduct
        self.gemm = gemm
        self.exact = exact
        centroidNorms = .allocate(capacity: max(centroids.rows, 1))
        VectorKernels.squaredNorms(centroids.pointer, rows: centroids.rows, dimension: centroids.columns, into: centroidNorms)
        if innerProduct {
            zeros = .allocate(capacity: max(centroids.rows, 1))
            zeros!.initialize(repeating: 0, count: max(centroids.rows, 1))
        } else {
            zeros = nil
        }
    }

    deinit {
        centroidNorms.deallocate()
        zeros?.deallocate()
        encoded?.deallocate()
    }

    /// The product the last `assign` used (`fp32`, `int8`, `bf16`).
    public private(set) var lastProduct = "fp32"

    func encodedCentroids(_ format: ReducedGEMM.Format) -> ReducedRows {
        encodeLock.lock()
        defer { encodeLock.unlock() }
        if let encoded, encoded.format == format { return encoded }
        encoded?.deallocate()
        let rows = ReducedRows.allocate(format: format, rows: centroids.rows, dimension: centroids.columns)
        rows.encode(centroids.pointer, rows: 0..<centroids.rows)
        encoded = rows
        return rows
    }

    /// The product `gemm` resolves to for `rows` vectors against `k` centroids of `dimension`.
    public static func format(_ gemm: GEMMChoice, rows: Int, k: Int, dimension: Int) throws -> ReducedGEMM.Format? {
        try GEMMCalibration.resolve(gemm, dimension: dimension, flops: 2 * Double(rows) * Double(k) * Double(dimension),
                                    minimumDimension: GEMMCalibration.minimumAssignmentDimension)
    }

    /// Assigns `rows` vectors (row-major, `lda` floats apart, `centroids.columns` used).
    /// `scores[i]` receives the exact `||x_i - c||^2`, or `-x_i . c` for inner product.
    /// `rowNorms`, when given, holds `||x_i||^2` (else it is computed). `encodedRows`, when it
    /// holds these rows in the format the product resolves to, saves encoding them again (k-means
    /// assigns the same points at every iteration).
    public func assign(
        _ vectors: UnsafePointer<Float>, rows: Int, lda: Int, rowNorms: UnsafePointer<Float>?,
        indices: UnsafeMutablePointer<Int32>, scores: UnsafeMutablePointer<Float>?, threads: Int,
        encodedRows: ReducedRows? = nil
    ) throws {
        guard rows > 0 else { return }
        let k = centroids.rows, d = centroids.columns
        let metric: Metric = innerProduct ? .ip : .euclidean
        let format = try Self.format(gemm, rows: rows, k: k, dimension: d)
        if format == nil && !exact {
            try assignByEstimate(vectors, rows: rows, lda: lda, rowNorms: rowNorms, indices: indices, scores: scores, threads: threads)
            lastProduct = "fp32"
            return
        }
        let given = encodedRows.flatMap { $0.format == format && $0.rows == rows && $0.dimension == d ? $0 : nil }
        let columnSide = format.map { encodedCentroids($0) }
        let blocks = (rows + Self.rowBlock - 1) / Self.rowBlock
        let shared = UnsafeSendable((vectors, indices, scores, rowNorms, columnSide, given))
        let centroids = self.centroids, centroidNorms = self.centroidNorms
        // The driver's scratch is block x block = 1024^2 floats, a 512 x 2048 tile.
        try BlockedJoin.run(items: blocks, threads: threads, block: 1024, format: format) { block, worker in
            let (vectors, indices, scores, givenNorms, columnSide, given) = shared.value
            let first = block * Self.rowBlock
            let count = min(Self.rowBlock, rows - first)
            // The block's rows packed when lda exceeds d (the scan reads rows d apart), their
            // norms and, for a reduced product, their encoding.
            let copy = lda == d ? nil : UnsafeMutablePointer<Float>.allocate(capacity: count * d)
            let norms = UnsafeMutablePointer<Float>.allocate(capacity: count)
            let bestUpper = UnsafeMutablePointer<Float>.allocate(capacity: count)
            let best = UnsafeMutablePointer<Float>.allocate(capacity: count)
            defer {
                copy?.deallocate()
                norms.deallocate()
                bestUpper.deallocate()
                best.deallocate()
            }
            if let copy {
                for r in 0..<count { (copy + r * d).update(from: vectors + (first + r) * lda, count: d) }
            }
            let packed = copy.map { UnsafePointer($0) } ?? vectors + first * d
            if let givenNorms {
                norms.update(from: givenNorms + first, count: count)
            } else {
                VectorKernels.squaredNorms(packed, rows: count, dimension: d, into: norms)
            }
            let own = given == nil ? format.map { ReducedRows.allocate(format: $0, rows: count, dimension: d) } : nil
            defer { own?.deallocate() }
            own?.encode(packed, rows: 0..<count)
            let rowSide = own ?? given
            let rowOffset = own == nil ? first : 0
            bestUpper.initialize(repeating: .infinity, count: count)
            best.initialize(repeating: .infinity, count: count)
            (indices + first).initialize(repeating: Int32.max, count: count)
            var column = 0
            while column < k {
                let width = min(Self.columnBlock, k - column)
                var reduced: ReducedTile? = nil
                if let multiplier = worker.multiplier, let rowSide, let columnSide {
                    multiplier.multiply(m: count, n: width, k: d, a: rowSide.aSide(rowOffset), lda: d, b: columnSide.bSide(column), ldb: d,
                                        c: UnsafeMutableRawPointer(worker.scratch), ldc: width)
                    let integers = multiplier.format == .int8 ? UnsafePointer(UnsafeRawPointer(worker.scratch).assumingMemoryBound(to: Int32.self)) : nil
                    reduced = ReducedTile(integers: integers, rows: rowSide, rowStart: rowOffset, columns: columnSide, columnStart: column, columnCount: width)
                } else {
                    BLAS.gemmABt(m: count, n: width, k: d, a: packed, lda: d, b: centroids.row(column), ldb: d, c: worker.scratch, ldc: width)
                }
                var tile = TileScan.Tile(
                    dots: worker.scratch, ldc: width, rowStart: first, rowCount: count, columnStart: column, columnCount: width,
                    rowVectors: packed, columnVectors: centroids.row(column), dimension: d,
                    rowNorms: norms, columnNorms: centroidNorms + column)
                tile.reduced = reduced
                TileScan.nearest(tile, metric: metric, bestUpper: bestUpper, bestScores: best, bestIndices: indices + first)
                column += width
            }
            if let scores { (scores + first).update(from: best, count: count) }
        }
        lastProduct = format?.rawValue ?? "fp32"
    }

    /// The fp32 kernel: argmin of the sgemm expansion per tile. `scores[i]` receives
    /// `||x_i||^2 + ||c||^2 - 2 x_i.c` clamped at 0 (norms computed when not given), or `-x_i.c`.
    func assignByEstimate(
        _ vectors: UnsafePointer<Float>, rows: Int, lda: Int, rowNorms: UnsafePointer<Float>?,
        indices: UnsafeMutablePointer<Int32>, scores: UnsafeMutablePointer<Float>?, threads: Int
    ) throws {
        let k = centroids.rows, d = centroids.columns
        let blocks = (rows + Self.rowBlock - 1) / Self.rowBlock
        let shared = UnsafeSendable((vectors, indices, scores, rowNorms))
        let centroids = self.centroids, columnTerms = self.columnTerms, innerProduct = self.innerProduct
        let dotFactor: Float = innerProduct ? -1 : -2
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
                        if innerProduct {
                            scores[first + r] = best[r]
                        } else {
                            // ||x||^2 + (||c||^2 - 2 x.c); rounding can dip below 0 for x = c.
                            let norm = rowNorms?[first + r] ?? VectorKernels.dot(vectors + (first + r) * lda, vectors + (first + r) * lda, count: d)
                            scores[first + r] = max(0, norm + best[r])
                        }
                    }
                }
            }
        }
    }
}
