/// Kernels of product quantization (Jegou, Douze and Schmid, "Product quantization for nearest
/// neighbor search", IEEE TPAMI 2011).
public enum PQKernels {
    /// Asymmetric distance computation over one inverted list: for each of `count` codes
    /// (`m` bytes each), `base + sum_m table[m * ksub + code[m]]`, offered to `heap` with the
    /// vector's id when it is within the heap's bound.
    @inlinable
    public static func scanCodes(
        codes: UnsafePointer<UInt8>, ids: UnsafePointer<Int32>, count: Int, m: Int, ksub: Int,
        table: UnsafePointer<Float>, base: Float, heap: inout CandidateHeap
    ) {
        var bound = heap.bound
        for index in 0..<count {
            let code = codes + index * m
            var sum0: Float = 0, sum1: Float = 0, sum2: Float = 0, sum3: Float = 0
            var sub = 0
            while sub + 4 <= m {
                sum0 += table[sub * ksub + Int(code[sub])]
                sum1 += table[(sub + 1) * ksub + Int(code[sub + 1])]
                sum2 += table[(sub + 2) * ksub + Int(code[sub + 2])]
                sum3 += table[(sub + 3) * ksub + Int(code[sub + 3])]
                sub += 4
            }
            while sub < m {
                sum0 += table[sub * ksub + Int(code[sub])]
                sub += 1
            }
            let score = base + ((sum0 + sum1) + (sum2 + sum3))
            if score <= bound {
                heap.offer(score: score, id: ids[index])
                bound = heap.bound
            }
        }
    }
}
