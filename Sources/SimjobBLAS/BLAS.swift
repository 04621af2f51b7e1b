import CBLAS
import Foundation

/// Single-precision matrix products through OpenBLAS's CBLAS interface.
///
/// The engine owns the threads (Dispatch) and calls BLAS from each worker on its own block, so
/// BLAS itself runs single-threaded: a multi-threaded OpenBLAS inside Dispatch workers
/// oversubscribes the cores and keeps a spinning thread after every call.
public enum BLAS {
    /// `C (m x n) = alpha * A (m x k) * B (n x k)^T + beta * C`, all row-major, with leading
    /// dimensions `lda`, `ldb`, `ldc` (elements between row starts).
    ///
    /// This is the shape of every distance block: rows of A are queries, rows of B base vectors,
    /// and C holds their inner products.
    @inlinable
    public static func gemmABt(
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans,
            blasint(m), blasint(n), blasint(k),
            alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }
}

extension BLAS {
    /// `C (m x n) = A^T B` for row-major `A (k x m)` and `B (k x n)`: a Gram or covariance
    /// matrix of the columns.
    @inlinable
    public static func gemmAtB(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            for row in 0..<m { (c + row * ldc).initialize(repeating: 0, count: n) }
            return
        }
        cblas_sgemm(
            CblasRowMajor, CblasTrans, CblasNoTrans,
            blasint(m), blasint(n), blasint(k),
            1, a, blasint(lda), b, blasint(ldb),
            0, c, blasint(ldc))
    }
}
