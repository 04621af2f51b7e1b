import Dispatch
import Foundation
import SimjobBLAS
import SimjobKernels
import Synchronization

/// The nearest centroid of every vector: k-means assignment, IVF cell assignment, PQ encoding.
///
/// Blocked like the exact engine, on the same driver (`BlockedJoin`: one single-threaded
/// product per tile, workers under Dispatch, cancellation per block of rows). Each tile's
/// products give every pair an estimate within a known error (fp32 rounding, plus the slack of
/// an int8 or bf16 product, see `ReducedRows`); only the centroids whose lower bound reaches the
/// row's least upper bound are scored exactly from the two vectors (`TileScan.nearest`), usually
/// one or two. The nearest centroid by exact score wins, ties to the lower index: the result is
/// the same with every product, every thread count and every split into tiles.
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

    /// `innerProduct` picks the centroid of largest inner product; otherwise the nearest in L2.
    public init(centroids: FloatMatrix, innerProduct: Bool = false, gemm: GEMMChoice = .auto) {
        self.centroids = centroids
        self.innerProduct = innerProduct
        self.gemm = gemm
        centroidNorms = .allocate(capacity: max(centroids.rows, 1))
        VectorKernels.squaredNorms(centroids.pointer, rows: centroids.rows, dimension: centroids.columns, into: centroidNorms)
    }

    deinit {
        centroidNorms.deallocate()
        encoded?.deallocate()
    }

    /// Exact re-scores of the last `assign` (pairs scored from the vectors), for statistics.
    public private(set) var lastRescored = 0
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
        do {
            return try GEMMCalibration.resolve(gemm, dimension: dimension, flops: 2 * Double(rows) * Double(k) * Double(dimension))
        } catch let error as GEMMChoiceError {
            throw SimjobError(error.description)
        }
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
        let given = encodedRows.flatMap { $0.format == format && $0.rows == rows && $0.dimension == d ? $0 : nil }
        let columnSide = format.map { encodedCentroids($0) }
        let blocks = (rows + Self.rowBlock - 1) / Self.rowBlock
        let shared = UnsafeSendable((vectors, indices, scores, rowNorms, columnSide, given))
        let rescored = Atomic<Int>(0)
        let centroids = self.centroids, centroidNorms = self.centroidNorms
        // The driver's scratch is block x block = 1024^2 floats, a 512 x 2048 tile.
        try BlockedJoin.run(items: blocks, threads: threads, block: 1024, format: format) { block, worker in
            let (vectors, indices, scores, givenNorms, columnSide, given) = shared.value
            let first = block * Self.rowBlock
            let count = min(Self.rowBlock, rows - first)
            // The block's rows packed (lda may exceed d), their norms and, for a reduced
            // product, their encoding.
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: count * d)
            let norms = UnsafeMutablePointer<Float>.allocate(capacity: count)
            let bestUpper = UnsafeMutablePointer<Float>.allocate(capacity: count)
            let best = UnsafeMutablePointer<Float>.allocate(capacity: count)
            defer {
                packed.deallocate()
                norms.deallocate()
                bestUpper.deallocate()
                best.deallocate()
            }
            for r in 0..<count { (packed + r * d).update(from: vectors + (first + r) * lda, count: d) }
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
            var scored = 0
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
                scored += TileScan.nearest(tile, metric: metric, bestUpper: bestUpper, bestScores: best, bestIndices: indices + first)
                column += width
            }
            if let scores { (scores + first).update(from: best, count: count) }
            rescored.add(scored, ordering: .relaxed)
        }
        lastRescored = rescored.load(ordering: .relaxed)
        lastProduct = format?.rawValue ?? "fp32"
    }
}
