/// The scan of a tile whose scores only rank candidates: the approximate graph's search in a
/// reduced (or full) space, whose lists are re-scored exactly afterwards.
///
/// Unlike `TileScan`, a candidate is kept on the GEMM expansion's score alone (no margin, no
/// exact re-score from the vectors): the score decides which candidates reach the exact stage,
/// not what is reported. Rows of the tile stand for list rows `rowIDs[r]`; columns are the
/// consecutive ids `columnStart ..< columnStart + columnCount`; a column equal to its row is
/// skipped.
///
/// Lists of a few dozen entries would spend most of the scan shifting entries on insertion
/// (candidates arrive in no particular order), so each row first collects what passes its bound
/// in a reservoir of `2 x width` entries: when it fills, the best `width` are kept and the
/// bound tightens to the worst of them (as FAISS's `ReservoirTopN`). At the end of the row the
/// reservoir, sorted, is merged into the list in one pass.
public enum CandidateScan {
    public struct Entry: Comparable {
        public var score: Float
        public var id: Int32
        @inlinable public static func < (a: Entry, b: Entry) -> Bool { a.score < b.score || (a.score == b.score && a.id < b.id) }
    }

    /// A tile of fp32 products (`dots`, row-major with `ldc`).
    public static func scan(
        dots: UnsafePointer<Float>, ldc: Int, rowCount: Int, columnCount: Int,
        rowIDs: UnsafePointer<Int32>, columnStart: Int,
        rowNorms: UnsafePointer<Float>, columnNorms: UnsafePointer<Float>,
        metric: Metric, lists: NeighborLists, skippingHeld: Bool = false, listOffset: Int = 0
    ) {
        scan(FloatRanks(dots: UnsafeRawPointer(dots), ldc: ldc), rowCount: rowCount, columnCount: columnCount, rowIDs: rowIDs,
             columnStart: columnStart, rowNorms: rowNorms, columnNorms: columnNorms, metric: metric, lists: lists,
             skippingHeld: skippingHeld, listOffset: listOffset)
    }

    /// A tile of int8 products (`ReducedGEMM`'s int32 sums, row-major with `ldc`): the product of
    /// row r and column c is `(sums[r][c] - columnOffsets[c]) x rowScales[r] x columnScales[c]`
    /// (`ReducedRows`' encoding). Quantization moves a score by about a percent of the norms'
    /// product, which ranks candidates as well as fp32 does (on Fashion-MNIST's 128 principal
    /// components, the same share of true neighbours among each row's best 30 of its 2,000
    /// nearest); ranks only, as every candidate is re-scored exactly afterwards.
    public static func scan(
        sums: UnsafePointer<Int32>, ldc: Int, dimension: Int, rowScales: UnsafePointer<Float>, columnScales: UnsafePointer<Float>,
        columnOffsets: UnsafePointer<Int32>, rowCount: Int, columnCount: Int,
        rowIDs: UnsafePointer<Int32>, columnStart: Int,
        rowNorms: UnsafePointer<Float>, columnNorms: UnsafePointer<Float>,
        metric: Metric, lists: NeighborLists, skippingHeld: Bool = false, listOffset: Int = 0
    ) {
        scan(IntegerRanks(sums: UnsafeRawPointer(sums), ldc: ldc, rowScales: rowScales, columnScales: UnsafeRawPointer(columnScales),
                          columnOffsets: UnsafeRawPointer(columnOffsets), small: dimension <= 256),
             rowCount: rowCount, columnCount: columnCount, rowIDs: rowIDs,
             columnStart: columnStart, rowNorms: rowNorms, columnNorms: columnNorms, metric: metric, lists: lists,
             skippingHeld: skippingHeld, listOffset: listOffset)
    }

    @inline(__always)
    static func scan<P: RankProducts>(
        _ products: P, rowCount: Int, columnCount: Int,
        rowIDs: UnsafePointer<Int32>, columnStart: Int,
        rowNorms: UnsafePointer<Float>, columnNorms: UnsafePointer<Float>,
        metric: Metric, lists: NeighborLists, skippingHeld: Bool, listOffset: Int
    ) {
        let normWeight = SIMD16<Float>(repeating: metric.normWeight)
        let constant = SIMD16<Float>(repeating: metric.constant)
        let factor = SIMD16<Float>(repeating: metric.dotFactor)
        let columnNormBytes = UnsafeRawPointer(columnNorms)
        let chunks = columnCount / 16, full = chunks * 16
        let width = lists.k, capacity = 2 * width + 16
        // A row with no bound yet (its list not full) would pass every column until the
        // reservoir first fills and then select again and again as the bound tightens. A first
        // pass keeps lane-wise minima of `groups` interleaved sets of chunks instead: the
        // (width + 1)-th smallest of those 16 x groups minima (distinct columns, one of them
        // perhaps the row itself) bounds the row's width-th best, so the second pass collects
        // little more than the best. About 2 x width minima: each stands for a few columns.
        let groups = max(1, (2 * (width + 1) + 15) / 16)
        let presort = chunks >= groups && 16 * groups > width + 1
        withUnsafeTemporaryAllocation(of: Entry.self, capacity: capacity) { reservoir in
        withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: groups + 1) { minima in
            let passing = minima.baseAddress! + groups
            let passingFloats = UnsafeRawPointer(passing).assumingMemoryBound(to: Float.self)
            for r in 0..<rowCount {
                let row = Int(rowIDs[r])
                // The list of `row` (a shard's lists start at `listOffset`); `row` itself is
                // the id a candidate must not equal.
                let listRow = row - listOffset
                let rowNorm = SIMD16<Float>(repeating: rowNorms[r])
                var boundScalar = lists.bounds[listRow]
                if presort && boundScalar == .infinity {
                    for g in 0..<groups { minima[g] = SIMD16(repeating: .infinity) }
                    var g = 0
                    for chunk in 0..<chunks {
                        let c = chunk * 16
                        var score = normWeight * (rowNorm + columnNormBytes.loadUnaligned(fromByteOffset: c * 4, as: SIMD16<Float>.self)) + constant
                        score.addProduct(factor, products.lanes(row: r, from: c))
                        minima[g].replace(with: score, where: score .< minima[g])
                        g = g + 1 == groups ? 0 : g + 1
                    }
                    let holdsSelf = row >= columnStart && row < columnStart + full
                    boundScalar = rankBound(minima.baseAddress!, groups: groups, rank: holdsSelf ? width + 1 : width)
                }
                var bound = SIMD16<Float>(repeating: boundScalar)
                var count = 0
                var c = 0
                while c < full {
                    var score = normWeight * (rowNorm + columnNormBytes.loadUnaligned(fromByteOffset: c * 4, as: SIMD16<Float>.self)) + constant
                    score.addProduct(factor, products.lanes(row: r, from: c))
                    var bits = VectorKernels.laneBits(score .<= bound)
                    if bits != 0 {
                        let selfLane = row - columnStart - c
                        if UInt(bitPattern: selfLane) < 16 { bits &= ~(1 << selfLane) }
                        // Stored once, read by lane (indexing the vector itself stores it again
                        // for every lane taken).
                        passing.pointee = score
                        while bits != 0 {
                            let lane = bits.trailingZeroBitCount
                            reservoir[count] = Entry(score: passingFloats[lane], id: Int32(truncatingIfNeeded: columnStart + c + lane))
                            count += 1
                            bits &= bits - 1
                        }
                        if count > 2 * width {
                            count = compact(reservoir, count: count, keep: width)
                            boundScalar = min(boundScalar, reservoir[width - 1].score)
                            bound = SIMD16<Float>(repeating: boundScalar)
                        }
                    }
                    c += 16
                }
                while c < columnCount {
                    let score = (metric.normWeight * (rowNorms[r] + columnNorms[c]) + metric.constant).addingProduct(metric.dotFactor, products.single(row: r, column: c))
                    if score <= boundScalar && columnStart + c != row {
                        reservoir[count] = Entry(score: score, id: Int32(truncatingIfNeeded: columnStart + c))
                        count += 1
                        if count > 2 * width {
                            count = compact(reservoir, count: count, keep: width)
                            boundScalar = min(boundScalar, reservoir[width - 1].score)
                        }
                    }
                    c += 1
                }
                guard count > 0 else { continue }
                if count > width { count = compact(reservoir, count: count, keep: width) }
                insertionSort(reservoir.baseAddress!, count: count)
                if skippingHeld {
                    for index in 0..<count {
                        let entry = reservoir[index]
                        if entry.score > lists.bounds[listRow] { break }
                        if lists.contains(row: listRow, id: entry.id) { continue }
                        lists.insert(row: listRow, score: entry.score, id: entry.id)
                    }
                } else {
                    lists.mergeSorted(row: listRow, entries: reservoir.baseAddress!, count: count)
                }
            }
        }
        }
    }

    /// A value at or above the `rank`-th smallest (1-based) of the `16 x groups` minima, so that
    /// at least `rank` of them are at or below it: a bisection between their extremes that
    /// counts the minima below the midpoint with vector compares, 12 times (within 1/4096 of
    /// their range of the exact order statistic). A quickselect found the exact value, but its
    /// data-dependent branches mispredicted on every row (this runs once per row of a tile).
    @inline(__always)
    static func rankBound(_ minima: UnsafeMutablePointer<SIMD16<Float>>, groups: Int, rank: Int) -> Float {
        var low = minima[0].min(), high = minima[0].max()
        for g in 1..<groups {
            low = Swift.min(low, minima[g].min())
            high = Swift.max(high, minima[g].max())
        }
        guard high.isFinite, low.isFinite else { return high }
        for _ in 0..<12 {
            let middle = low + (high - low) * 0.5
            let threshold = SIMD16<Float>(repeating: middle)
            var count = 0
            for g in 0..<groups { count += VectorKernels.laneBits(minima[g] .<= threshold).nonzeroBitCount }
            if count >= rank { high = middle } else { low = middle }
        }
        return high
    }

    /// Keeps the best `keep` of the first `count` entries at the front (the `keep`-th best at
    /// index `keep - 1`, the others before it in no order); returns `keep`. Quickselect.
    @inline(__always)
    static func compact(_ reservoir: UnsafeMutableBufferPointer<Entry>, count: Int, keep: Int) -> Int {
        VectorKernels.select(reservoir.baseAddress!, count: count, rank: keep - 1)
        return keep
    }

    /// Sorts a short run of entries in place.
    @inline(__always)
    static func insertionSort(_ base: UnsafeMutablePointer<Entry>, count: Int) {
        guard count > 1 else { return }
        for i in 1..<count {
            let value = base[i]
            var j = i
            while j > 0 && value < base[j - 1] {
                base[j] = base[j - 1]
                j -= 1
            }
            base[j] = value
        }
    }
}

/// Products of a tile as the candidate scan reads them: 16 columns of a row, or one.
protocol RankProducts {
    func lanes(row r: Int, from start: Int) -> SIMD16<Float>
    func single(row r: Int, column c: Int) -> Float
}

struct FloatRanks: RankProducts {
    let dots: UnsafeRawPointer
    let ldc: Int

    @inline(__always)
    func lanes(row r: Int, from start: Int) -> SIMD16<Float> {
        dots.loadUnaligned(fromByteOffset: (r * ldc + start) * 4, as: SIMD16<Float>.self)
    }

    @inline(__always)
    func single(row r: Int, column c: Int) -> Float { dots.load(fromByteOffset: (r * ldc + c) * 4, as: Float.self) }
}

struct IntegerRanks: RankProducts {
    let sums: UnsafeRawPointer
    let ldc: Int
    let rowScales: UnsafePointer<Float>
    let columnScales: UnsafeRawPointer
    let columnOffsets: UnsafeRawPointer
    /// Sums of at most 2^22 in magnitude (dimension at most 256), converted in two instructions.
    let small: Bool

    @inline(__always)
    func lanes(row r: Int, from start: Int) -> SIMD16<Float> {
        integerProducts(sums, ldc: ldc, row: r, from: start, rowScale: rowScales[r], columnScales: columnScales,
                        columnOffsets: columnOffsets, small: small)
    }

    @inline(__always)
    func single(row r: Int, column c: Int) -> Float {
        let sum = sums.load(fromByteOffset: (r * ldc + c) * 4, as: Int32.self) &- columnOffsets.load(fromByteOffset: c * 4, as: Int32.self)
        return Float(sum) * (rowScales[r] * columnScales.load(fromByteOffset: c * 4, as: Float.self))
    }
}
