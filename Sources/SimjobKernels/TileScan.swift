/// The fused "inner products to distances to top-k" step for one tile of a blocked GEMM.
///
/// A tile covers rows `rowStart ..< rowStart + rowCount` of one set (`rowVectors`, local row 0
/// first) and columns `columnStart ..< columnStart + columnCount` of another or the same set
/// (`columnVectors`); `dots` holds their inner products, row-major with leading dimension
/// `ldc`, as `BLAS.gemmABt` leaves them.
///
/// Each inner product becomes an approximate score through the metric's expansion (see
/// `Metric.normWeight`), compared 16 at a time against the lists' bounds with a margin for
/// rounding, `1e-5 * (||x||^2 + ||y||^2)`. Only the rare survivors get their exact score
/// (`Metric.exactScore`, straight from the two vectors) and are offered to row i's list
/// (candidate j) and, for the symmetric self-join, to column j's list (candidate i). So every
/// score in a list is exact, ties are true ties, and exact duplicates sit at distance 0.
public enum TileScan {
    /// Which pairs of a tile are candidates.
    public enum Pairs: Sendable {
        /// Every (i, j): queries against a separate base.
        case all
        /// Every (i, j) with i != j: a set against itself, each side computed separately.
        case allButSelf
        /// Only j > i, offered to both i's and j's lists: the symmetric self-join, where each
        /// pair is computed once. Tiles entirely below the diagonal are never scanned.
        case upperTriangle
    }

    /// Relative rounding allowance of the GEMM expansion (about 100 float ulps of the norms).
    public static let roundingMargin: Float = 1e-5

    /// One tile's inputs. Pointers are local to the tile: index 0 is its first row or column.
    public struct Tile {
        public var dots: UnsafePointer<Float>
        public var ldc: Int
        public var rowStart: Int, rowCount: Int
        public var columnStart: Int, columnCount: Int
        public var rowVectors: UnsafePointer<Float>, columnVectors: UnsafePointer<Float>
        public var dimension: Int
        /// Squared norms of the tile's rows and columns.
        public var rowNorms: UnsafePointer<Float>, columnNorms: UnsafePointer<Float>
        /// Set when the products came from reduced rows (`ReducedProducts`): `dots` then holds
        /// bf16 products, or is unused beside int8 sums.
        public var reduced: ReducedTile? = nil

        public init(
            dots: UnsafePointer<Float>, ldc: Int,
            rowStart: Int, rowCount: Int, columnStart: Int, columnCount: Int,
            rowVectors: UnsafePointer<Float>, columnVectors: UnsafePointer<Float>, dimension: Int,
            rowNorms: UnsafePointer<Float>, columnNorms: UnsafePointer<Float>
        ) {
            self.dots = dots
            self.ldc = ldc
            self.rowStart = rowStart
            self.rowCount = rowCount
            self.columnStart = columnStart
            self.columnCount = columnCount
            self.rowVectors = rowVectors
            self.columnVectors = columnVectors
            self.dimension = dimension
            self.rowNorms = rowNorms
            self.columnNorms = columnNorms
        }
    }

    /// Scans one tile.
    ///
    /// `rowLists` is indexed by `globalRow - rowListOffset`. With `.upperTriangle`,
    /// `columnLists` receives the column side, indexed by the global column id (row and column
    /// ids are the same set's there).
    /// Returns how many pairs were re-scored exactly (the filter's survivors).
    @discardableResult
    public static func scan(
        _ tile: Tile, metric: Metric, pairs: Pairs,
        rowLists: NeighborLists, rowListOffset: Int = 0, columnLists: NeighborLists? = nil
    ) -> Int {
        // Each scan is compiled once per kind of product (fp32 scans carry no slack arithmetic).
        switch ProductKind(tile, metric: metric) {
        case .float(let products):
            if pairs == .upperTriangle {
                return scanBothSides(tile, products, metric: metric, lists: rowLists, columnLists: columnLists ?? rowLists)
            } else {
                return scanRows(tile, products, metric: metric, skipSelf: pairs == .allButSelf, lists: rowLists, listOffset: rowListOffset)
            }
        case .half(let products):
            if pairs == .upperTriangle {
                return scanBothSides(tile, products, metric: metric, lists: rowLists, columnLists: columnLists ?? rowLists)
            } else {
                return scanRows(tile, products, metric: metric, skipSelf: pairs == .allButSelf, lists: rowLists, listOffset: rowListOffset)
            }
        case .integer(let products):
            if pairs == .upperTriangle {
                return scanBothSides(tile, products, metric: metric, lists: rowLists, columnLists: columnLists ?? rowLists)
            } else {
                return scanRows(tile, products, metric: metric, skipSelf: pairs == .allButSelf, lists: rowLists, listOffset: rowListOffset)
            }
        }
    }

    /// A tile's products in their concrete form.
    enum ProductKind {
        case float(FloatProducts), half(HalfProducts), integer(IntegerProducts)

        init(_ tile: Tile, metric: Metric) {
            let factor = abs(metric.dotFactor)
            if let reduced = tile.reduced {
                if let integers = reduced.integers {
                    self = .integer(IntegerProducts(integers: UnsafeRawPointer(integers), ldc: tile.ldc, reduced: reduced, factor: factor))
                } else {
                    self = .half(HalfProducts(dots: UnsafeRawPointer(tile.dots), ldc: tile.ldc, reduced: reduced, factor: factor))
                }
            } else {
                self = .float(FloatProducts(dots: UnsafeRawPointer(tile.dots), ldc: tile.ldc))
            }
        }
    }

    /// Scans a tile whose rows and columns were gathered from anywhere in a set: row r stands
    /// for id `rowIDs[r]` (its list row) and column c for id `columnIDs[c]`, or for
    /// `tile.columnStart + c` when the columns are consecutive (`columnIDs` nil); a column whose
    /// id equals the row's is skipped (a row is not its own neighbour).
    @discardableResult
    public static func scanGathered(
        _ tile: Tile, metric: Metric, rowIDs: UnsafePointer<Int32>, columnIDs: UnsafePointer<Int32>?, lists: NeighborLists, listOffset: Int = 0
    ) -> Int {
        switch ProductKind(tile, metric: metric) {
        case .float(let products):
            return scanRows(tile, products, metric: metric, skipSelf: true, lists: lists, listOffset: listOffset, rowIDs: rowIDs, columnIDs: columnIDs)
        case .half(let products):
            return scanRows(tile, products, metric: metric, skipSelf: true, lists: lists, listOffset: listOffset, rowIDs: rowIDs, columnIDs: columnIDs)
        case .integer(let products):
            return scanRows(tile, products, metric: metric, skipSelf: true, lists: lists, listOffset: listOffset, rowIDs: rowIDs, columnIDs: columnIDs)
        }
    }

    /// Row side only: each row of the tile feeds its own list. Ids are `rowStart + r` and
    /// `columnStart + c`, or taken from `rowIDs` / `columnIDs` when given.
    static func scanRows<Products: TileProducts>(
        _ tile: Tile, _ products: Products, metric: Metric, skipSelf: Bool, lists: NeighborLists, listOffset: Int,
        rowIDs: UnsafePointer<Int32>? = nil, columnIDs: UnsafePointer<Int32>? = nil
    ) -> Int {
        var survivors = 0
        let normWeight = SIMD16<Float>(repeating: metric.normWeight)
        let constant = SIMD16<Float>(repeating: metric.constant)
        let factor = SIMD16<Float>(repeating: metric.dotFactor)
        let margin = SIMD16<Float>(repeating: -roundingMargin)
        let twiceMargin = SIMD16<Float>(repeating: 2 * roundingMargin)
        let nearestOnly = lists.k == 1
        let columnNorms = UnsafeRawPointer(tile.columnNorms)
        let d = tile.dimension
        for r in 0..<tile.rowCount {
            let row = rowIDs.map { Int($0[r]) } ?? tile.rowStart + r
            let listRow = row - listOffset
            let rowNorm = SIMD16<Float>(repeating: tile.rowNorms[r])
            let rowVector = tile.rowVectors + r * d
            var bound = SIMD16<Float>(repeating: lists.bounds[listRow])
            var c = 0
            // The last partial group of 16 is handled by stepping back so it overlaps the
            // previous one; lanes already seen are masked out.
            while c < tile.columnCount {
                let start = min(c, max(tile.columnCount - 16, 0))
                let lanes = min(16, tile.columnCount)
                if lanes < 16 {
                    survivors += scanScalarRow(tile, products, r: r, from: c, metric: metric, skipSelf: skipSelf, lists: lists, listRow: listRow, row: row, columnIDs: columnIDs)
                    break
                }
                let norms = rowNorm + columnNorms.loadUnaligned(fromByteOffset: start * 4, as: SIMD16<Float>.self)
                let (dots, rowSlack) = products.lanes(row: r, from: start)
                var estimate = normWeight * norms + constant
                estimate.addProduct(factor, dots)
                estimate.addProduct(margin, norms)
                var slack = rowSlack
                var score = estimate - slack
                var passing = score .<= bound
                if Products.hasSlack && VectorKernels.anyLane(passing) {
                    // The row's slack let the group through: test again with each pair's own.
                    slack = products.preciseSlack(row: r, from: start)
                    score = estimate - slack
                    passing = score .<= bound
                }
                if nearestOnly && VectorKernels.anyLane(passing) {
                    // k = 1: only lanes that could beat the group's best estimate can win. The
                    // row itself is no candidate: its lane (a score near 0) must not set the best.
                    var upper = score
                    upper.addProduct(twiceMargin, norms)
                    upper += 2 * slack
                    if skipSelf {
                        for lane in 0..<16 where (columnIDs.map { Int($0[start + lane]) } ?? tile.columnStart + start + lane) == row {
                            upper[lane] = .infinity
                        }
                    }
                    passing = passing .& (score .<= SIMD16(repeating: VectorKernels.horizontalMin(upper)))
                }
                if VectorKernels.anyLane(passing) {
                    for lane in (c - start)..<16 where passing[lane] {
                        let column = columnIDs.map { Int($0[start + lane]) } ?? tile.columnStart + start + lane
                        if skipSelf && column == row { continue }
                        let exact = metric.exactScore(rowVector, tile.columnVectors + (start + lane) * d, dimension: d)
                        survivors += 1
                        lists.insert(row: listRow, score: exact, id: Int32(truncatingIfNeeded: column))
                    }
                    bound = SIMD16<Float>(repeating: lists.bounds[listRow])
                }
                c = start + 16
            }
        }
        return survivors
    }

    /// Fewer than 16 columns in the tile: one at a time.
    static func scanScalarRow<Products: TileProducts>(
        _ tile: Tile, _ products: Products, r: Int, from first: Int, metric: Metric, skipSelf: Bool, lists: NeighborLists, listRow: Int,
        row: Int, columnIDs: UnsafePointer<Int32>?
    ) -> Int {
        var survivors = 0
        let d = tile.dimension
        for c in first..<tile.columnCount {
            let column = columnIDs.map { Int($0[c]) } ?? tile.columnStart + c
            if skipSelf && column == row { continue }
            let norms = tile.rowNorms[r] + tile.columnNorms[c]
            let (dot, slack) = products.single(row: r, column: c)
            let score = (metric.normWeight * norms + metric.constant)
                .addingProduct(metric.dotFactor, dot)
                .addingProduct(-roundingMargin, norms) - slack
            guard score <= lists.bounds[listRow] else { continue }
            let exact = metric.exactScore(tile.rowVectors + r * d, tile.columnVectors + c * d, dimension: d)
            survivors += 1
            lists.insert(row: listRow, score: exact, id: Int32(truncatingIfNeeded: column))
        }
        return survivors
    }

    /// Symmetric self-join: pairs with j > i only, each feeding both i's and j's lists.
    static func scanBothSides<Products: TileProducts>(_ tile: Tile, _ products: Products, metric: Metric, lists: NeighborLists, columnLists: NeighborLists) -> Int {
        var survivors = 0
        let normWeight = SIMD16<Float>(repeating: metric.normWeight)
        let constant = SIMD16<Float>(repeating: metric.constant)
        let factor = SIMD16<Float>(repeating: metric.dotFactor)
        let margin = SIMD16<Float>(repeating: -roundingMargin)
        let columnNorms = UnsafeRawPointer(tile.columnNorms)
        let columnBounds = UnsafeRawPointer(columnLists.bounds + tile.columnStart)
        let d = tile.dimension
        for r in 0..<tile.rowCount {
            let row = tile.rowStart + r
            let rowID = Int32(truncatingIfNeeded: row)
            let rowVector = tile.rowVectors + r * d
            // Columns at or left of the diagonal belong to other pairs (or are the row itself).
            let firstColumn = max(0, row + 1 - tile.columnStart)
            guard firstColumn < tile.columnCount else { continue }
            if tile.columnCount - firstColumn < 16 {
                for c in firstColumn..<tile.columnCount {
                    let norms = tile.rowNorms[r] + tile.columnNorms[c]
                    let (dot, slack) = products.single(row: r, column: c)
                    let score = (metric.normWeight * norms + metric.constant)
                        .addingProduct(metric.dotFactor, dot)
                        .addingProduct(-roundingMargin, norms) - slack
                    let column = tile.columnStart + c
                    guard score <= lists.bounds[row] || score <= columnLists.bounds[column] else { continue }
                    let exact = metric.exactScore(rowVector, tile.columnVectors + c * d, dimension: d)
                    survivors += 1
                    lists.insert(row: row, score: exact, id: Int32(truncatingIfNeeded: column))
                    columnLists.insert(row: column, score: exact, id: rowID)
                }
                continue
            }
            let rowNorm = SIMD16<Float>(repeating: tile.rowNorms[r])
            var bound = SIMD16<Float>(repeating: lists.bounds[row])
            var c = firstColumn
            while c < tile.columnCount {
                let start = min(c, tile.columnCount - 16)
                let norms = rowNorm + columnNorms.loadUnaligned(fromByteOffset: start * 4, as: SIMD16<Float>.self)
                let (dots, rowSlack) = products.lanes(row: r, from: start)
                var estimate = normWeight * norms + constant
                estimate.addProduct(factor, dots)
                estimate.addProduct(margin, norms)
                let columnBound = columnBounds.loadUnaligned(fromByteOffset: start * 4, as: SIMD16<Float>.self)
                var score = estimate - rowSlack
                var passing = (score .<= bound) .| (score .<= columnBound)
                if Products.hasSlack && VectorKernels.anyLane(passing) {
                    // The row's slack let the group through: test again with each pair's own.
                    score = estimate - products.preciseSlack(row: r, from: start)
                    passing = (score .<= bound) .| (score .<= columnBound)
                }
                if VectorKernels.anyLane(passing) {
                    for lane in (c - start)..<16 where passing[lane] {
                        let column = tile.columnStart + start + lane
                        let exact = metric.exactScore(rowVector, tile.columnVectors + (start + lane) * d, dimension: d)
                        survivors += 1
                        // insert() rejects a candidate that is no better than the list's k-th.
                        lists.insert(row: row, score: exact, id: Int32(truncatingIfNeeded: column))
                        columnLists.insert(row: column, score: exact, id: rowID)
                    }
                    bound = SIMD16<Float>(repeating: lists.bounds[row])
                }
                c = start + 16
            }
        }
        return survivors
    }
}

extension TileScan {
    /// The nearest column of every row of a tile, by exact score, merged into running bests:
    /// k-means, IVF and PQ assignment.
    ///
    /// The product gives each pair an estimate within a known error: the fp32 rounding margin,
    /// plus the reduced product's slack when there is one; over the tile, a row's error is at
    /// most `E` (its slack and the margin with the tile's largest column norm). One pass keeps,
    /// lane by lane, the least and second least estimate and the least one's column. When no
    /// other estimate comes within `2E` of the least, that column is the nearest by exact score
    /// too; it is scored exactly and merged into `bestScores` / `bestIndices`. Otherwise (near
    /// ties) a second pass scores exactly every column whose lower bound reaches the least upper
    /// bound. `bestUpper[r]` carries the least upper bound over earlier tiles. Ties go to the
    /// lower column index, so the split into tiles does not matter, and the nearest column by
    /// exact score is never skipped: the result is the same whatever the product. Returns how
    /// many pairs were scored exactly.
    @discardableResult
    public static func nearest(
        _ tile: Tile, metric: Metric, bestUpper: UnsafeMutablePointer<Float>,
        bestScores: UnsafeMutablePointer<Float>, bestIndices: UnsafeMutablePointer<Int32>
    ) -> Int {
        switch ProductKind(tile, metric: metric) {
        case .float(let products): nearest(tile, products, metric: metric, bestUpper: bestUpper, bestScores: bestScores, bestIndices: bestIndices)
        case .half(let products): nearest(tile, products, metric: metric, bestUpper: bestUpper, bestScores: bestScores, bestIndices: bestIndices)
        case .integer(let products): nearest(tile, products, metric: metric, bestUpper: bestUpper, bestScores: bestScores, bestIndices: bestIndices)
        }
    }

    static func nearest<Products: TileProducts>(
        _ tile: Tile, _ products: Products, metric: Metric, bestUpper: UnsafeMutablePointer<Float>,
        bestScores: UnsafeMutablePointer<Float>, bestIndices: UnsafeMutablePointer<Int32>
    ) -> Int {
        let normWeight = SIMD16<Float>(repeating: metric.normWeight)
        let constant = SIMD16<Float>(repeating: metric.constant)
        let factor = SIMD16<Float>(repeating: metric.dotFactor)
        let margin = SIMD16<Float>(repeating: roundingMargin)
        let columnNorms = UnsafeRawPointer(tile.columnNorms)
        let d = tile.dimension
        let groups = tile.columnCount / 16
        let laneOffsets = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        var largestColumnNorm: Float = 0
        for c in 0..<tile.columnCount { largestColumnNorm = max(largestColumnNorm, tile.columnNorms[c]) }
        var rescored = 0
        for r in 0..<tile.rowCount {
            let rowNorm = SIMD16<Float>(repeating: tile.rowNorms[r])
            let rowVector = tile.rowVectors + r * d
            // The row's largest error over the tile (estimates are exact to within it).
            var rowError = roundingMargin * (tile.rowNorms[r] + largestColumnNorm)
            var best = bestScores[r], bestIndex = bestIndices[r]
            var least = bestUpper[r]
            func offer(_ c: Int) {
                let exact = metric.exactScore(rowVector, tile.columnVectors + c * d, dimension: d)
                rescored += 1
                let column = Int32(truncatingIfNeeded: tile.columnStart + c)
                if exact < best || (exact == best && column < bestIndex) {
                    best = exact
                    bestIndex = column
                }
                least = min(least, exact)
            }
            // One pass: least and second least estimate per lane, and the least one's column.
            var first = SIMD16<Float>(repeating: .infinity), second = first
            var firstIndex = SIMD16<Int32>(repeating: -1)
            var index = laneOffsets
            var slack: Float = 0
            for group in 0..<groups {
                let norms = rowNorm + columnNorms.loadUnaligned(fromByteOffset: group * 64, as: SIMD16<Float>.self)
                let (dots, rowSlack) = products.lanes(row: r, from: group * 16)
                var value = normWeight * norms + constant
                value.addProduct(factor, dots)
                let better = value .< first
                second.replace(with: value, where: value .< second)
                second.replace(with: first, where: better)
                first.replace(with: value, where: better)
                firstIndex.replace(with: index, where: better)
                index &+= 16
                slack = rowSlack[0]
            }
            rowError += slack
            var leastEstimate = Float.infinity, leastLane = -1
            for lane in 0..<16 where first[lane] < leastEstimate {
                leastEstimate = first[lane]
                leastLane = lane
            }
            // The tail columns (fewer than 16) are always scored exactly: at most 15 per row.
            var unique = groups > 0 && leastLane >= 0
            if unique {
                let limit = leastEstimate + 2 * rowError
                for lane in 0..<16 where second[lane] <= limit || (lane != leastLane && first[lane] <= limit) {
                    unique = false
                    break
                }
                // Earlier tiles' best is within reach too: decide it exactly against this one.
                if unique {
                    offer(Int(firstIndex[leastLane]))
                }
            }
            if !unique && groups > 0 {
                // Near ties: the least upper bound, then exact scores of every column reaching it.
                var upper = SIMD16<Float>(repeating: least)
                for group in 0..<groups {
                    let norms = rowNorm + columnNorms.loadUnaligned(fromByteOffset: group * 64, as: SIMD16<Float>.self)
                    let (dots, rowSlack) = products.lanes(row: r, from: group * 16)
                    var bound = normWeight * norms + constant + rowSlack
                    bound.addProduct(factor, dots)
                    bound.addProduct(margin, norms)
                    upper.replace(with: bound, where: bound .< upper)
                }
                least = min(least, VectorKernels.horizontalMin(upper))
                for group in 0..<groups {
                    let start = group * 16
                    let norms = rowNorm + columnNorms.loadUnaligned(fromByteOffset: start * 4, as: SIMD16<Float>.self)
                    let (dots, rowSlack) = products.lanes(row: r, from: start)
                    var value = normWeight * norms + constant
                    value.addProduct(factor, dots)
                    var lower = value - rowSlack
                    lower.addProduct(-margin, norms)
                    let limit = SIMD16<Float>(repeating: least)
                    var passing = lower .<= limit
                    guard VectorKernels.anyLane(passing) else { continue }
                    if Products.hasSlack {
                        lower = value - products.preciseSlack(row: r, from: start)
                        lower.addProduct(-margin, norms)
                        passing = lower .<= limit
                    }
                    for lane in 0..<16 where passing[lane] { offer(start + lane) }
                }
            }
            for c in (groups * 16)..<tile.columnCount { offer(c) }
            bestUpper[r] = least
            bestScores[r] = best
            bestIndices[r] = bestIndex
        }
        return rescored
    }
}
