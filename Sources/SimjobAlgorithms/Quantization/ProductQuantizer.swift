import Dispatch
import Foundation
import Logging
import SimjobBLAS
import SimjobKernels

/// A product quantizer: the d dimensions are cut into `m` sub-vectors of `dsub = d / m`
/// dimensions, each quantized to one of `ksub = 2^nbits` centroids of its own k-means, so a
/// vector is stored in `m` bytes (Jegou, Douze and Schmid, IEEE TPAMI 2011).
public final class ProductQuantizer: @unchecked Sendable {
    public let dimension: Int
    public let m: Int
    public let nbits: Int
    public let ksub: Int
    public let dsub: Int
    /// `(m * ksub) x dsub`: sub-quantizer `s`'s centroid `j` is row `s * ksub + j`.
    public let codebooks: FloatMatrix
    /// `||centroid||^2` per codebook row.
    let codebookNorms: UnsafeMutablePointer<Float>

    public init(dimension: Int, m: Int, nbits: Int, codebooks: FloatMatrix) {
        self.dimension = dimension
        self.m = m
        self.nbits = nbits
        ksub = 1 << nbits
        dsub = dimension / m
        self.codebooks = codebooks
        codebookNorms = .allocate(capacity: m * ksub)
        VectorKernels.squaredNorms(codebooks.pointer, rows: m * ksub, dimension: dsub, into: codebookNorms)
    }

    deinit { codebookNorms.deallocate() }

    /// Checks `m` and `nbits` against the dimension, in the words of the option names.
    public static func validate(dimension: Int, m: Int, nbits: Int) throws {
        guard m >= 1, dimension % m == 0 else {
            throw SimjobError("m = \(m) must divide the dimension \(dimension) (sub-vectors of equal length)")
        }
        guard (1...8).contains(nbits) else { throw SimjobError("nbits = \(nbits) must be between 1 and 8") }
    }

    /// Trains every sub-quantizer by k-means on its sub-vectors of `vectors`.
    public static func train(
        _ vectors: FloatMatrix, m: Int, nbits: Int, kmeans template: KMeansConfig, logger: Logger? = nil
    ) throws -> (ProductQuantizer, [KMeansResult]) {
        let d = vectors.columns
        try validate(dimension: d, m: m, nbits: nbits)
        let ksub = 1 << nbits
        let dsub = d / m
        guard vectors.rows >= ksub else {
            throw SimjobError("product quantizer: \(vectors.rows) training vectors are fewer than 2^nbits = \(ksub) centroids")
        }
        let codebooks = FloatMatrix(rows: m * ksub, columns: dsub)
        // Sub-quantizers train side by side, one single-threaded k-means each: their problems
        // are small (2^nbits centroids of d/m dimensions), and splitting one across threads
        // would synchronise them every iteration. Seeds differ by sub-quantizer, not by thread.
        let threads = max(1, template.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let slots = UnsafeMutablePointer<Result<KMeansResult, Error>?>.allocate(capacity: m)
        slots.initialize(repeating: nil, count: m)
        defer { slots.deinitialize(count: m); slots.deallocate() }
        try BlockedJoin.run(items: m, threads: threads) { s, _ in
            let sub = FloatMatrix(rows: vectors.rows, columns: dsub)
            for row in 0..<vectors.rows {
                sub.row(row).update(from: vectors.row(row) + s * dsub, count: dsub)
            }
            var config = template
            config.k = ksub
            config.seed = template.seed &+ UInt64(s)
            config.threads = 1
            var kmeans = KMeans(config: config, logger: nil)
            kmeans.label = "product quantizer \(s + 1)/\(m)"
            slots[s] = Result {
                let result = try kmeans.train(sub)
                (codebooks.pointer + s * ksub * dsub).update(from: result.centroids.pointer, count: ksub * dsub)
                return result
            }
        }
        let results = try (0..<m).map { try slots[$0]!.get() }
        return (ProductQuantizer(dimension: d, m: m, nbits: nbits, codebooks: codebooks), results)
    }

    /// Codes of `rows` vectors (`m` bytes each), computed by blocks in parallel: per
    /// sub-quantizer one sgemm of the sub-vectors against its centroids, then the nearest.
    public func encode(_ vectors: UnsafePointer<Float>, rows: Int, into codes: UnsafeMutablePointer<UInt8>, threads: Int) throws {
        let block = ExactKNNConfig.defaultBlock
        let blocks = (rows + block - 1) / block
        let shared = UnsafeSendable((vectors, codes))
        // The driver's GEMM scratch (block x block) holds a block's products with the 2^nbits
        // centroids of one sub-quantizer when 2^nbits <= block; larger codebooks get their own.
        try BlockedJoin.run(items: blocks, threads: threads, block: block) { index, worker in
            let dots = ksub <= block ? worker.scratch : UnsafeMutablePointer<Float>.allocate(capacity: block * ksub)
            let nearest = UnsafeMutablePointer<Int32>.allocate(capacity: block)
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: block)
            defer {
                if ksub > block { dots.deallocate() }
                nearest.deallocate()
                scores.deallocate()
            }
            let start = index * block
            let count = min(block, rows - start)
            encodeBlock(shared.value.0 + start * dimension, rows: count, into: shared.value.1 + start * m, dots: dots, nearest: nearest, scores: scores)
        }
    }

    func encodeBlock(
        _ vectors: UnsafePointer<Float>, rows: Int, into codes: UnsafeMutablePointer<UInt8>,
        dots: UnsafeMutablePointer<Float>, nearest: UnsafeMutablePointer<Int32>, scores: UnsafeMutablePointer<Float>
    ) {
        for s in 0..<m {
            BLAS.gemmABt(
                m: rows, n: ksub, k: dsub,
                a: vectors + s * dsub, lda: dimension,
                b: codebooks.pointer + s * ksub * dsub, ldb: dsub,
                c: dots, ldc: ksub)
            scores.initialize(repeating: .infinity, count: rows)
            ClusterKernels.nearestColumns(
                dots: dots, ldc: ksub, rows: rows, columns: ksub, columnStart: 0,
                columnTerms: codebookNorms + s * ksub, dotFactor: -2, bestScores: scores, bestIndices: nearest)
            for row in 0..<rows { codes[row * m + s] = UInt8(truncatingIfNeeded: nearest[row]) }
        }
    }

    /// The vectors that `codes` stand for.
    public func decode(_ codes: UnsafePointer<UInt8>, rows: Int, into vectors: UnsafeMutablePointer<Float>) {
        for row in 0..<rows {
            for s in 0..<m {
                let centroid = codebooks.pointer + (s * ksub + Int(codes[row * m + s])) * dsub
                (vectors + row * dimension + s * dsub).update(from: centroid, count: dsub)
            }
        }
    }

    /// `tables[q][s][j] = x_q,s . c_s,j` for `rows` vectors: `rows x (m * ksub)`.
    func innerProductTables(_ vectors: UnsafePointer<Float>, rows: Int, into tables: UnsafeMutablePointer<Float>) {
        for s in 0..<m {
            BLAS.gemmABt(
                m: rows, n: ksub, k: dsub,
                a: vectors + s * dsub, lda: dimension,
                b: codebooks.pointer + s * ksub * dsub, ldb: dsub,
                c: tables + s * ksub, ldc: m * ksub)
        }
    }

    /// Mean squared reconstruction error of `vectors` through encode and decode.
    public func reconstructionError(_ vectors: FloatMatrix, threads: Int) throws -> Double {
        let codes = UnsafeMutablePointer<UInt8>.allocate(capacity: vectors.rows * m)
        defer { codes.deallocate() }
        try encode(vectors.pointer, rows: vectors.rows, into: codes, threads: threads)
        let decoded = FloatMatrix(rows: vectors.rows, columns: dimension)
        decode(codes, rows: vectors.rows, into: decoded.pointer)
        var total = 0.0
        for row in 0..<vectors.rows {
            total += Double(VectorKernels.squaredDistance(vectors.row(row), decoded.row(row), count: dimension))
        }
        return total / Double(max(vectors.rows, 1))
    }
}
