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

extension ClusterKernels {
    /// The nearest column of every row of a tile of inner products, merged into running bests.
    ///
    /// Row r's score for column c is `columnTerms[c] + dotFactor * dots[r * ldc + c]`: with
    /// `||c||^2` and -2 that is the squared distance minus the row's constant `||x||^2`; with 0
    /// and -1 it is the negated inner product. `bestScores[r]` / `bestIndices[r]` hold the best
    /// so far (start at +infinity); ties go to the lower column index, so the result does not
    /// depend on how columns were split into tiles. Branch-free: a lane-wise running minimum
    /// and its index, reduced once per row.
    @inlinable
    public static func nearestColumns(
        dots: UnsafePointer<Float>, ldc: Int, rows: Int, columns: Int, columnStart: Int,
        columnTerms: UnsafePointer<Float>, dotFactor: Float,
        bestScores: UnsafeMutablePointer<Float>, bestIndices: UnsafeMutablePointer<Int32>
    ) {
        let factor = SIMD16<Float>(repeating: dotFactor)
        let terms = UnsafeRawPointer(columnTerms)
        let laneOffsets = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        let fullGroups = columns / 16
        for r in 0..<rows {
            let line = UnsafeRawPointer(dots + r * ldc)
            var best = SIMD16<Float>(repeating: .infinity)
            var bestIndex = SIMD16<Int32>(repeating: Int32.max)
            var index = laneOffsets &+ Int32(truncatingIfNeeded: columnStart)
            for group in 0..<fullGroups {
                var score = terms.loadUnaligned(fromByteOffset: group * 64, as: SIMD16<Float>.self)
                score.addProduct(factor, line.loadUnaligned(fromByteOffset: group * 64, as: SIMD16<Float>.self))
                let better = score .< best
                best.replace(with: score, where: better)
                bestIndex.replace(with: index, where: better)
                index &+= 16
            }
            var rowBest = bestScores[r]
            var rowIndex = bestIndices[r]
            for lane in 0..<16 where best[lane] < rowBest || (best[lane] == rowBest && bestIndex[lane] < rowIndex) {
                rowBest = best[lane]
                rowIndex = bestIndex[lane]
            }
            let rowDots = dots + r * ldc
            for c in (fullGroups * 16)..<columns {
                let score = columnTerms[c].addingProduct(dotFactor, rowDots[c])
                let candidate = Int32(truncatingIfNeeded: columnStart + c)
                if score < rowBest || (score == rowBest && candidate < rowIndex) {
                    rowBest = score
                    rowIndex = candidate
                }
            }
            bestScores[r] = rowBest
            bestIndices[r] = rowIndex
        }
    }
}
