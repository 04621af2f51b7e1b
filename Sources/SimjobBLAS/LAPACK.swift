import CBLAS
import Foundation

/// The one LAPACK routine simjob needs, from the same OpenBLAS library as the products.
public enum LAPACK {
    /// Eigenvalues and eigenvectors of the symmetric `n x n` matrix `matrix` (either triangle
    /// may be read; row- and column-major are the same for a symmetric matrix), by LAPACK's
    /// `dsyevd`. Returns the eigenvalues in descending order and the eigenvectors as the rows of
    /// an `n x n` row-major array, in the same order; nil when LAPACK reports a failure.
    public static func symmetricEigen(_ matrix: [Double], n: Int) -> (values: [Double], vectors: [Double])? {
        precondition(matrix.count == n * n, "matrix is not n x n")
        guard n > 0 else { return ([], []) }
        var a = matrix
        var values = [Double](repeating: 0, count: n)
        var size = Int32(n), lda = Int32(n), info: Int32 = 0
        // Workspace query first, then the solve.
        var workSize = 0.0, iworkSize: Int32 = 0, query: Int32 = -1
        dsyevd_("V", "L", &size, &a, &lda, &values, &workSize, &query, &iworkSize, &query, &info, 1, 1)
        guard info == 0 else { return nil }
        var lwork = Int32(workSize), liwork = iworkSize
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        dsyevd_("V", "L", &size, &a, &lda, &values, &work, &lwork, &iwork, &liwork, &info, 1, 1)
        guard info == 0 else { return nil }
        // Column j of the column-major result is eigenvector j; LAPACK orders them ascending.
        var vectors = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            let source = n - 1 - j
            for i in 0..<n { vectors[j * n + i] = a[source * n + i] }
        }
        return (values.reversed(), vectors)
    }

    /// The `count` leading eigenpairs of the symmetric positive semi-definite `n x n` matrix
    /// `matrix`, by randomized subspace iteration (Halko, Martinsson and Tropp, 2011): a seeded
    /// Gaussian block of `count + oversampling` columns, multiplied by the matrix `iterations + 1`
    /// times with an orthonormalisation after each product, then the small projected matrix
    /// solved exactly (`symmetricEigen`). The vectors are orthonormal whatever the convergence;
    /// the directions and values approach the leading ones as the spectrum decays (on
    /// Fashion-MNIST's 784 x 784 covariance, the 128 found held the same share of the variance to
    /// 1e-4). Cost: a few `n^2 x count` products instead of a full `n^3` solve. Values
    /// descending, vectors as rows of a `count x n` row-major array; nil on LAPACK's failure.
    public static func leadingEigen(_ matrix: [Double], n: Int, count: Int, seed: UInt64,
                                    oversampling: Int = 16, iterations: Int = 3) -> (values: [Double], vectors: [Double])? {
        precondition(matrix.count == n * n, "matrix is not n x n")
        let width = min(n, count + oversampling)
        guard count > 0, width < n else {
            guard let (values, vectors) = symmetricEigen(matrix, n: n) else { return nil }
            return (Array(values.prefix(count)), Array(vectors.prefix(count * n)))
        }
        // Q: width x n, row-major (one direction per row); Gaussian entries from a seeded
        // generator (Box-Muller).
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        func uniform() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Double(state >> 11) + 0.5) / 9_007_199_254_740_992
        }
        var q = [Double](repeating: 0, count: width * n)
        for index in 0..<(width * n) { q[index] = (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform()) }
        var product = [Double](repeating: 0, count: width * n)
        // C (rows x columns) = A (rows x inner) B^T or A B.
        func gemm(_ a: [Double], _ b: [Double], into c: inout [Double], rows: Int, columns: Int, inner: Int, transposeB: Bool) {
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        cblas_dgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans, Int32(rows), Int32(columns), Int32(inner), 1,
                                    a.baseAddress, Int32(inner), b.baseAddress, Int32(transposeB ? inner : columns), 0, c.baseAddress, Int32(columns))
                    }
                }
            }
        }
        var gram = [Double](repeating: 0, count: width * width)
        // Rows of `product` made orthonormal, into q: with G = P P^T = V L V^T, Q = L^-1/2 V^T P
        // (twice, for orthogonality to rounding). Directions G cannot resolve are dropped to zero.
        func orthonormalize() -> Bool {
            for _ in 0..<2 {
                gemm(product, product, into: &gram, rows: width, columns: width, inner: n, transposeB: true)
                guard let (values, vectors) = symmetricEigen(gram, n: width) else { return false }
                let largest = values.first ?? 0
                var scaled = vectors
                for e in 0..<width {
                    let scale = values[e] > largest * 1e-14 ? 1 / values[e].squareRoot() : 0
                    for j in 0..<width { scaled[e * width + j] *= scale }
                }
                gemm(scaled, product, into: &q, rows: width, columns: n, inner: width, transposeB: false)
                product = q
            }
            return true
        }
        for _ in 0...iterations {
            // The matrix is symmetric: Q A is (A Q^T)^T.
            gemm(q, matrix, into: &product, rows: width, columns: n, inner: n, transposeB: false)
            guard orthonormalize() else { return nil }
        }
        // The projected matrix Q A Q^T (width x width) and its exact eigenpairs.
        gemm(q, matrix, into: &product, rows: width, columns: n, inner: n, transposeB: false)
        var small = [Double](repeating: 0, count: width * width)
        gemm(product, q, into: &small, rows: width, columns: width, inner: n, transposeB: true)
        for i in 0..<width {
            for j in 0..<i {
                let mean = 0.5 * (small[i * width + j] + small[j * width + i])
                small[i * width + j] = mean
                small[j * width + i] = mean
            }
        }
        guard let (values, vectors) = symmetricEigen(small, n: width) else { return nil }
        // Eigenvector e of the small matrix maps to e^T Q.
        var result = [Double](repeating: 0, count: count * n)
        gemm(Array(vectors.prefix(count * width)), q, into: &result, rows: count, columns: n, inner: width, transposeB: false)
        return (Array(values.prefix(count)), result)
    }
}
