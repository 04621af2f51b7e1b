/// Kernels of the k-means update step.
public enum ClusterKernels {
    /// Adds every point's coordinates `columns` into its cluster's running sum:
    /// `sums[assignment[i] * dimension + j] += points[i * dimension + j]` for j in `columns`,
    /// in point order. Accumulating in Double and in a fixed order makes centroids identical
    /// whatever the number of threads that split the columns between them.
    @inlinable
    public static func accumulate(
        points: UnsafePointer<Float>, count: Int, dimension: Int, assignments: UnsafePointer<Int32>,
        columns: Range<Int>, sums: UnsafeMutablePointer<Double>
    ) {
        for i in 0..<count {
            let point = points + i * dimension
            let sum = sums + Int(assignments[i]) * dimension
            for j in columns { sum[j] += Double(point[j]) }
        }
    }

    /// `||x||^2` of a Double row, for normalising spherical centroids.
    @inlinable
    public static func squaredNorm(_ x: UnsafePointer<Float>, dimension: Int) -> Float {
        VectorKernels.dot(x, x, count: dimension)
    }
}
