/// The range-join counterpart of `TileScan`: every pair of a tile whose distance is at most a
/// threshold, with no top-k. Scores come from the GEMM tile through the metric's expansion and
/// are compared 16 at a time against `maxScore` plus the rounding margin of `TileScan`; the
/// survivors are re-scored exactly from the vectors, and only pairs whose exact score is within
/// `maxScore` are emitted, so a pair at exactly the threshold is included. Products from reduced
/// rows (int8, bf16) are compared with their error bound subtracted too (`ReducedRows`), so the
/// pairs emitted are the same.
public enum RangeScan {
    /// Scans one tile. Indices are tile-local: row r is `tile.rowStart + r`, column c is
    /// `tile.columnStart + c`, in whatever index space the caller uses. With `upperTriangle`,
    /// only pairs whose column index is above the row index are considered (a set joined with
    /// itself, each pair once). `emit(row, column, exactScore)` receives those indices.
    public static func scan(
        _ tile: TileScan.Tile, metric: Metric, maxScore: Float, upperTriangle: Bool,
        emit: (Int, Int, Float) -> Void
    ) {
        switch TileScan.ProductKind(tile, metric: metric) {
        case .float(let products): scan(tile, products, metric: metric, maxScore: maxScore, upperTriangle: upperTriangle, emit: emit)
        case .half(let products): scan(tile, products, metric: metric, maxScore: maxScore, upperTriangle: upperTriangle, emit: emit)
        case .integer(let products): scan(tile, products, metric: metric, maxScore: maxScore, upperTriangle: upperTriangle, emit: emit)
        }
    }

    static func scan<Products: TileProducts>(
        _ tile: TileScan.Tile, _ products: Products, metric: Metric, maxScore: Float, upperTriangle: Bool,
        emit: (Int, Int, Float) -> Void
    ) {
        let normWeight = SIMD16<Float>(repeating: metric.normWeight)
        let constant = SIMD16<Float>(repeating: metric.constant)
        let factor = SIMD16<Float>(repeating: metric.dotFactor)
        let margin = SIMD16<Float>(repeating: -TileScan.roundingMargin)
        let limit = SIMD16<Float>(repeating: maxScore)
        let columnNorms = UnsafeRawPointer(tile.columnNorms)
        let d = tile.dimension
        for r in 0..<tile.rowCount {
            let row = tile.rowStart + r
            let rowVector = tile.rowVectors + r * d
            let first = upperTriangle ? max(0, row + 1 - tile.columnStart) : 0
            guard first < tile.columnCount else { continue }
            let rowNorm = SIMD16<Float>(repeating: tile.rowNorms[r])
            var c = first
            while c + 16 <= tile.columnCount {
                let norms = rowNorm + columnNorms.loadUnaligned(fromByteOffset: c * 4, as: SIMD16<Float>.self)
                let (dots, rowSlack) = products.lanes(row: r, from: c)
                var estimate = normWeight * norms + constant
                estimate.addProduct(factor, dots)
                estimate.addProduct(margin, norms)
                var passing = estimate - rowSlack .<= limit
                if Products.hasSlack && VectorKernels.anyLane(passing) {
                    passing = estimate - products.preciseSlack(row: r, from: c) .<= limit
                }
                if VectorKernels.anyLane(passing) {
                    for lane in 0..<16 where passing[lane] {
                        let exact = metric.exactScore(rowVector, tile.columnVectors + (c + lane) * d, dimension: d)
                        if exact <= maxScore { emit(row, tile.columnStart + c + lane, exact) }
                    }
                }
                c += 16
            }
            while c < tile.columnCount {
                let norms = tile.rowNorms[r] + tile.columnNorms[c]
                let (dot, slack) = products.single(row: r, column: c)
                let score = (metric.normWeight * norms + metric.constant)
                    .addingProduct(metric.dotFactor, dot)
                    .addingProduct(-TileScan.roundingMargin, norms) - slack
                if score <= maxScore {
                    let exact = metric.exactScore(rowVector, tile.columnVectors + c * d, dimension: d)
                    if exact <= maxScore { emit(row, tile.columnStart + c, exact) }
                }
                c += 1
            }
        }
    }
}
