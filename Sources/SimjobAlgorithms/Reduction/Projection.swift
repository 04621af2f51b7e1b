import Dispatch
import Foundation
import SimjobBLAS
import SimjobCore
import SimjobKernels

/// A linear map to fewer dimensions by principal components, for scoring candidates cheaply:
/// the approximate graph ranks candidate pairs in the reduced space and re-scores the best of
/// them exactly in the full one.
///
/// The basis is the leading eigenvectors of the rows' covariance (for euclidean and angular,
/// where distances do not depend on the mean) or of their second moment (for inner products,
/// where they do), estimated on a seeded sample of rows. Reduced vectors are `x B^T` for the
/// `m x d` basis `B`, one sgemm per block of rows. Squared distances in the reduced space are
/// those of the projections, at most the full ones; the dimension is chosen so that the
/// discarded directions hold a small share of the variance.
public struct Projection: Sendable {
    /// How the basis is chosen.
    public struct Config: Sendable {
        /// Reduced dimension; 0 picks the smallest multiple of 16 (at least 32) whose components
        /// hold `variance` of the total. Default 0.
        public var dimension = 0
        /// Share of the variance the automatic dimension keeps. Default 0.9.
        public var variance = 0.9
        /// With a `dimension` given: when its components hold less than `variance`, take more,
        /// up to this many (the smallest multiple of 16 that reaches `variance`, else this).
        /// 0 (or a value at or below `dimension`) keeps `dimension`. Default 0.
        public var widenTo = 0
        /// Rows the covariance is estimated on (seeded sample). Default 4,096.
        public var sample = 4_096
        /// Centre the rows first (covariance); false uses the second moment. Default true.
        public var centered = true
        public var seed: UInt64 = 1
        public var threads: Int? = nil

        public init() {}
    }

    public let inputDimension: Int
    public let outputDimension: Int
    /// `outputDimension x inputDimension`, one principal direction per row, largest first.
    public let basis: FloatMatrix
    /// Share of the sample's variance the kept directions hold.
    public let captured: Double

    /// Principal components of `vectors` (normalised already for angular).
    public init(_ vectors: FloatMatrix, config: Config) throws {
        let n = vectors.rows, d = vectors.columns
        let rows = sampleIndices(min(config.sample, n), from: n, seed: config.seed &+ 0x9CA)
        let covariance = Self.moments(vectors, rows: rows, centered: config.centered)
        // The total variance is the trace, whichever eigenvalues are found.
        let total = (0..<d).reduce(0.0) { $0 + max(covariance[$1 * d + $1], 0) }
        // A dimension asked for well below the input's takes the leading directions alone, by
        // subspace iteration (on Fashion-MNIST, 784 to 128: 0.1 s of a full solve to 0.02 s);
        // the automatic dimension needs the whole spectrum.
        func solve(_ count: Int) throws -> (values: [Double], vectors: [Double]) {
            let leadingOnly = count > 0 && 2 * count <= d
            guard let result = leadingOnly
                ? LAPACK.leadingEigen(covariance, n: d, count: count, seed: config.seed &+ 0x1EAD)
                : LAPACK.symmetricEigen(covariance, n: d) else {
                throw SimjobError("principal components: LAPACK's eigensolver failed on the \(d) x \(d) covariance")
            }
            return result
        }
        func share(_ values: [Double], _ m: Int) -> Double {
            total > 0 ? values.prefix(m).reduce(0) { $0 + max($1, 0) } / total : 1
        }
        var (values, vectors) = try solve(config.dimension)
        var m = config.dimension > 0 ? min(config.dimension, d) : d
        if config.dimension == 0 {
            var running = 0.0
            for (index, value) in values.enumerated() {
                running += max(value, 0)
                if total <= 0 || running >= config.variance * total {
                    m = min(d, max(32, (index + 1 + 15) / 16 * 16))
                    break
                }
            }
        } else if config.widenTo > m && share(values, m) < config.variance {
            let widest = min(config.widenTo, d)
            (values, vectors) = try solve(widest)
            m = widest
            var running = 0.0
            for (index, value) in values.prefix(widest).enumerated() {
                running += max(value, 0)
                if index + 1 >= config.dimension && running >= config.variance * total {
                    m = min(widest, (index + 1 + 15) / 16 * 16)
                    break
                }
            }
        }
        inputDimension = d
        outputDimension = m
        captured = share(values, m)
        basis = FloatMatrix(rows: m, columns: d)
        for index in 0..<(m * d) { basis.pointer[index] = Float(vectors[index]) }
    }

    /// Partial sums of the moments (at most; one per 512 sampled rows).
    static let partialSums = 8

    /// The basis of an earlier projection (saved with a sharded graph's shared work).
    public init(basis: FloatMatrix, captured: Double) {
        inputDimension = basis.columns
        outputDimension = basis.rows
        self.basis = basis
        self.captured = captured
    }

    /// The `d x d` covariance (or second moment) of the sampled rows, in double precision: one
    /// sgemm `X^T X` per worker over its share of the rows, summed.
    static func moments(_ vectors: FloatMatrix, rows: [Int], centered: Bool) -> [Double] {
        let d = vectors.columns, count = rows.count
        var mean = [Double](repeating: 0, count: d)
        if centered {
            for row in rows {
                let x = vectors.row(row)
                for j in 0..<d { mean[j] += Double(x[j]) }
            }
            for j in 0..<d { mean[j] /= Double(max(count, 1)) }
        }
        let gathered = FloatMatrix(rows: count, columns: d)
        for (index, row) in rows.enumerated() {
            let source = vectors.row(row), target = gathered.row(index)
            for j in 0..<d { target[j] = source[j] - Float(mean[j]) }
        }
        // A fixed number of partial sums (not one per thread), so that the basis is the same
        // at any thread count: a sharded graph's prepared projection must be the one a whole
        // run computes.
        let workers = max(1, min(Self.partialSums, count / 512))
        let partials = (0..<workers).map { _ in FloatMatrix(rows: d, columns: d) }
        BLASRuntime.setThreads(1)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let start = count * worker / workers, end = count * (worker + 1) / workers
            BLAS.gemmAtB(m: d, n: d, k: end - start, a: gathered.row(start), lda: d, b: gathered.row(start), ldb: d,
                         c: partials[worker].pointer, ldc: d)
        }
        var result = [Double](repeating: 0, count: d * d)
        for partial in partials {
            for index in 0..<(d * d) { result[index] += Double(partial.pointer[index]) }
        }
        let scale = 1 / Double(max(count, 1))
        for index in 0..<(d * d) { result[index] *= scale }
        return result
    }

    /// The reduced rows of `vectors`: `vectors x basis^T`, blocks of rows in parallel.
    public func apply(_ vectors: FloatMatrix, threads: Int?) throws -> FloatMatrix {
        precondition(vectors.columns == inputDimension, "projection of the wrong dimension")
        let n = vectors.rows, d = inputDimension, m = outputDimension
        let reduced = FloatMatrix(rows: n, columns: m)
        let block = 4096
        let blocks = (n + block - 1) / block
        let basis = self.basis
        try BlockedJoin.run(items: blocks, threads: max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount), block: 1) { item, _ in
            let start = item * block, rows = min(block, n - start)
            BLAS.gemmABt(m: rows, n: m, k: d, a: vectors.row(start), lda: d, b: basis.pointer, ldb: d,
                         c: reduced.row(start), ldc: m)
        }
        return reduced
    }
}
