import CMemoryHints

/// Row-wise kernels over row-major `rows x dimension` Float matrices.
public enum VectorKernels {
    /// `out[i] = ||x_i||^2`.
    @inlinable
    public static func squaredNorms(
        _ x: UnsafePointer<Float>, rows: Int, dimension: Int, into out: UnsafeMutablePointer<Float>
    ) {
        for row in 0..<rows {
            out[row] = dot(x + row * dimension, x + row * dimension, count: dimension)
        }
    }

    /// Scales every row to unit length; zero rows stay zero (see `Metric` for the rule).
    @inlinable
    public static func normalizeRows(_ x: UnsafeMutablePointer<Float>, rows: Int, dimension: Int) {
        for row in 0..<rows {
            let start = x + row * dimension
            let norm = dot(start, start, count: dimension).squareRoot()
            guard norm > 0 else { continue }
            let scale = 1 / norm
            for column in 0..<dimension { start[column] *= scale }
        }
    }

    /// The largest squared norm a row may have: 2^124 (a norm of 2^62, about 4.6e18). Every score
    /// the engine forms, `||x||^2 + ||y||^2 - 2 x.y` with `|x.y| <= ||x|| ||y||`, is then at most
    /// 2^126, below Float's largest finite value (about 2^128): no overflow to infinity anywhere.
    public static let maximumSquaredNorm: Float = 0x1p124

    /// The index of the first row that simjob cannot compute with: one holding NaN or an
    /// infinity, or whose squared norm exceeds `maximumSquaredNorm` (or overflows), if any.
    /// One pass of a fused sum of squares; NaN and infinities make the sum fail the comparison.
    @inlinable
    public static func firstNonFiniteRow(_ x: UnsafePointer<Float>, rows: Int, dimension: Int) -> Int? {
        for row in 0..<rows {
            let start = x + row * dimension
            let squared = dot(start, start, count: dimension)
            if !(squared <= maximumSquaredNorm) { return row }
        }
        return nil
    }

    /// Why a row returned by `firstNonFiniteRow` is unusable, in words.
    public static func describeUnusableRow(_ row: UnsafePointer<Float>, dimension: Int) -> String {
        let values = UnsafeBufferPointer(start: row, count: dimension)
        if let column = values.firstIndex(where: { $0.isNaN }) { return "contains NaN (column \(column))" }
        if let column = values.firstIndex(where: { $0.isInfinite }) { return "contains an infinite value (column \(column))" }
        let largest = values.map { abs($0) }.max() ?? 0
        return "has values too large to compute with (largest |x| = \(largest); squared norms must stay below 2^124, a norm of about 4.6e18, so that squared distances fit in float32)"
    }

    /// Asks for the cache lines of `bytes` bytes from `address` ahead of their use: for rows
    /// read by id (re-scoring candidates, gathering a join set), whose addresses the hardware
    /// prefetcher cannot guess. A hint only: it never faults.
    @inlinable
    public static func prefetch(_ address: UnsafeRawPointer, bytes: Int) {
        var offset = 0
        while offset < bytes {
            simjob_prefetch(address + offset)
            offset += 64
        }
    }

    /// `x . y` over `count` elements, accumulated in 16 lanes.
    @inlinable
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = SIMD16<Float>(), more = SIMD16<Float>()
        var index = 0
        let rawX = UnsafeRawPointer(x)
        let rawY = UnsafeRawPointer(y)
        // Two accumulators, as in `squaredDistance`.
        while index + 32 <= count {
            lanes.addProduct(rawX.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self),
                             rawY.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self))
            more.addProduct(rawX.loadUnaligned(fromByteOffset: index * 4 + 64, as: SIMD16<Float>.self),
                            rawY.loadUnaligned(fromByteOffset: index * 4 + 64, as: SIMD16<Float>.self))
            index += 32
        }
        if index + 16 <= count {
            lanes.addProduct(rawX.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self),
                             rawY.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self))
            index += 16
        }
        var sum = horizontalSum(lanes + more)
        while index < count {
            sum += x[index] * y[index]
            index += 1
        }
        return sum
    }

    /// `||x - y||^2`.
    @inlinable
    public static func squaredDistance(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        // Two accumulators: one chain of fused multiply-adds waits on its own latency (four
        // cycles), and re-scoring 784-d candidates ran at a quarter of the FMA units' rate.
        var lanes = SIMD16<Float>(), more = SIMD16<Float>()
        var index = 0
        let rawX = UnsafeRawPointer(x)
        let rawY = UnsafeRawPointer(y)
        while index + 32 <= count {
            let difference = rawX.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
                - rawY.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            let next = rawX.loadUnaligned(fromByteOffset: index * 4 + 64, as: SIMD16<Float>.self)
                - rawY.loadUnaligned(fromByteOffset: index * 4 + 64, as: SIMD16<Float>.self)
            lanes.addProduct(difference, difference)
            more.addProduct(next, next)
            index += 32
        }
        if index + 16 <= count {
            let difference = rawX.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
                - rawY.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            lanes.addProduct(difference, difference)
            index += 16
        }
        var sum = horizontalSum(lanes + more)
        while index < count {
            let difference = x[index] - y[index]
            sum += difference * difference
            index += 1
        }
        return sum
    }

    /// `(||x - y||^2, ||x||^2, ||y||^2)` in one pass.
    @inlinable
    public static func squaredDistanceAndNorms(
        _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int
    ) -> (Float, Float, Float) {
        var distanceLanes = SIMD16<Float>(), xLanes = SIMD16<Float>(), yLanes = SIMD16<Float>()
        let rawX = UnsafeRawPointer(x), rawY = UnsafeRawPointer(y)
        var index = 0
        while index + 16 <= count {
            let a = rawX.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            let b = rawY.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self)
            let difference = a - b
            distanceLanes.addProduct(difference, difference)
            xLanes.addProduct(a, a)
            yLanes.addProduct(b, b)
            index += 16
        }
        var distance = horizontalSum(distanceLanes), xNorm = horizontalSum(xLanes), yNorm = horizontalSum(yLanes)
        while index < count {
            let difference = x[index] - y[index]
            distance += difference * difference
            xNorm += x[index] * x[index]
            yNorm += y[index] * y[index]
            index += 1
        }
        return (distance, xNorm, yNorm)
    }

    /// Sum of 16 lanes by halving (the standard library's generic `sum()` is not specialised
    /// and cost more than the distance it finished).
    @inlinable
    public static func horizontalSum(_ x: SIMD16<Float>) -> Float {
        let eight = x.lowHalf + x.highHalf
        let four = eight.lowHalf + eight.highHalf
        let two = four.lowHalf + four.highHalf
        return two[0] + two[1]
    }

    /// Whether any of 16 lanes is set, by halving the mask's bits: the standard library's
    /// generic `any(_:)` reduces through an unspecialised `min()` call, which took a tenth of
    /// the fused scans' time.
    @inlinable @inline(__always)
    public static func anyLane(_ mask: SIMDMask<SIMD16<Int32>>) -> Bool {
        let bits = unsafeBitCast(mask, to: SIMD16<Int32>.self)
        let eight = bits.lowHalf | bits.highHalf
        let four = eight.lowHalf | eight.highHalf
        return (four[0] | four[1] | four[2] | four[3]) != 0
    }

    /// Bit `i` set where lane `i` of a comparison is true (`laneBits(mask) & (1 << i)`), so the
    /// passing lanes are visited by `trailingZeroBitCount` instead of testing all 16.
    @inlinable @inline(__always)
    public static func laneBits(_ mask: SIMDMask<SIMD16<Int32>>) -> Int {
        Int(simjob_lane_bits(unsafeBitCast(mask, to: SIMD16<Int32>.self)))
    }

    /// Reorders the first `count` elements of `base` so that the one of 0-based rank `rank` is
    /// at `rank`, none before it larger and none after it smaller (quickselect, Hoare's
    /// partition).
    @inlinable @inline(__always)
    public static func select<T: Comparable>(_ base: UnsafeMutablePointer<T>, count: Int, rank: Int) {
        var low = 0, high = count - 1
        while low < high {
            let pivot = base[(low + high) / 2]
            var i = low, j = high
            while i <= j {
                while base[i] < pivot { i += 1 }
                while pivot < base[j] { j -= 1 }
                if i <= j {
                    let swap = base[i]
                    base[i] = base[j]
                    base[j] = swap
                    i += 1
                    j -= 1
                }
            }
            if rank <= j { high = j } else if rank >= i { low = i } else { break }
        }
    }

    /// Hamming distances of `rows` codes of `words` 64-bit words (row-major) to `query`.
    @inlinable
    public static func hammingDistances(_ codes: UnsafePointer<UInt64>, rows: Int, words: Int, query: UnsafePointer<UInt64>,
                                        into distances: UnsafeMutablePointer<UInt16>) {
        simjob_hamming_distances(codes, rows, words, query, distances)
    }

    /// Minimum of 16 lanes (lane by lane: the standard library's generic `pointwiseMin` was
    /// not specialised and showed up at 25 % of a k-means profile).
    @inlinable
    public static func horizontalMin(_ x: SIMD16<Float>) -> Float {
        var result = x[0]
        for lane in 1..<16 where x[lane] < result { result = x[lane] }
        return result
    }
}
