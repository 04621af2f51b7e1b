import SimjobKernels

extension FloatMatrix {
    /// Scores `count` candidate rows of this matrix exactly against the prepared query `x` and
    /// offers them to `row`'s list in `result`, the row two candidates ahead asked for: the
    /// candidates of a hashing or tree search are anywhere in the set, and each score would
    /// wait on memory otherwise.
    @inline(__always)
    func scoreCandidates(_ x: UnsafePointer<Float>, _ candidates: UnsafePointer<Int32>, count: Int, metric: Metric, into result: NeighborLists, row: Int) {
        let d = columns
        for index in 0..<count {
            if index + 2 < count { VectorKernels.prefetch(self.row(Int(candidates[index + 2])), bytes: d * 4) }
            let id = candidates[index]
            result.insert(row: row, score: metric.preparedScore(x, self.row(Int(id)), dimension: d), id: id)
        }
    }
}
