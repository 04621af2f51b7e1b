import CBLAS

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
}
