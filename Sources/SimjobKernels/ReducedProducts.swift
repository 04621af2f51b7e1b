import SimjobBLAS

/// Vectors in a reduced-precision format for `ReducedGEMM`, with the three norms per row that
/// bound what the format changed, so that scans built on reduced products stay exact.
///
/// ## Why the results stay exact
///
/// Write each stored vector as what the format keeps plus a residual, `x = x^ + e_x`:
/// - int8: `x^ = s_x q_x` with `s_x = max_i |x_i| / L` and `q_x = round(x / s_x)`, integers in
///   [-L, L]; the product of two rows is `s_x s_y (q_x . q_y)`, where `q_x . q_y` is summed
///   exactly in int32 by `ReducedGEMM` (the A side is stored as `q + L + 1` in `UInt8`, so the
///   sum carries `(L + 1) sum(q_y)`, subtracted exactly before use). L is
///   `ReducedGEMM.int8Levels`: 127, or 63 on CPUs where oneDNN's kernel would saturate pairs of
///   byte products in 16 bits (the coarser grid only widens the bound below);
/// - bf16: `x^` is x rounded to bfloat16; the product `x^ . y^` is accumulated in fp32, with the
///   same rounding as fp32's own sgemm.
///
/// Then, exactly, `x . y - x^ . y^ = x^ . e_y + e_x . y`, and by Cauchy-Schwarz
///
///     |x . y - x^ . y^|  <=  ||x^|| ||e_y|| + ||e_x|| ||y||  =:  eps(x, y)
///
/// Every score is `normWeight (||x||^2 + ||y||^2) + constant + dotFactor (x . y)` (`Metric`),
/// with the norms taken from the full vectors, so the score computed from a reduced product
/// is within `|dotFactor| eps(x, y)` of the fp32 one. The scans subtract that slack, plus the
/// fp32 rounding margin they already allow, before comparing with a list's bound: a pair whose
/// exact score could enter a list always passes, and every pair that passes is re-scored
/// exactly from the two fp32 vectors (`Metric.exactScore`). Lists therefore receive the same
/// candidates with the same exact scores as with fp32 products, and end identical; only the
/// number of pairs re-scored grows (the slack's cost, reported by the engines).
///
/// The three norms are computed in double from the stored values and rounded up by a relative
/// `normAllowance`, which covers the float rounding of the slack's own arithmetic. A tiny
/// absolute `slackFloor` covers products of vectors so small that their scaled products
/// underflow.
public struct ReducedRows {
    public var format: ReducedGEMM.Format
    public var rows: Int
    public var dimension: Int
    /// int8: `q + 128` per element (the A side of a product); nil for bf16.
    public var unsigned: UnsafeMutablePointer<UInt8>?
    /// int8: `q` per element (the B side); nil for bf16.
    public var signed: UnsafeMutablePointer<Int8>?
    /// bf16: the bfloat16 bits per element (either side); nil for int8.
    public var halves: UnsafeMutablePointer<UInt16>?
    /// int8: `s` per row (bf16: 1).
    public var scales: UnsafeMutablePointer<Float>
    /// int8: `128 * sum(q)` per row, to subtract from a product whose B side is this row.
    public var offsets: UnsafeMutablePointer<Int32>
    /// `||x^||`, `||e_x||`, `||x||` per row, rounded up.
    public var hat: UnsafeMutablePointer<Float>
    public var error: UnsafeMutablePointer<Float>
    public var length: UnsafeMutablePointer<Float>

    /// Relative allowance on the stored norms.
    public static let normAllowance: Double = 1e-5
    /// Absolute slack for underflowing products.
    public static let slackFloor: Float = 1e-36

    /// Allocates storage for `rows x dimension` vectors in `format` (uninitialised).
    public static func allocate(format: ReducedGEMM.Format, rows: Int, dimension: Int) -> ReducedRows {
        let count = max(rows * dimension, 1), perRow = max(rows, 1)
        return ReducedRows(
            format: format, rows: rows, dimension: dimension,
            unsigned: format == .int8 ? .allocate(capacity: count) : nil,
            signed: format == .int8 ? .allocate(capacity: count) : nil,
            halves: format == .bf16 ? .allocate(capacity: count) : nil,
            scales: .allocate(capacity: perRow), offsets: .allocate(capacity: perRow),
            hat: .allocate(capacity: perRow), error: .allocate(capacity: perRow), length: .allocate(capacity: perRow))
    }

    public func deallocate() {
        unsigned?.deallocate()
        signed?.deallocate()
        halves?.deallocate()
        scales.deallocate()
        offsets.deallocate()
        hat.deallocate()
        error.deallocate()
        length.deallocate()
    }

    /// Bytes held per row.
    public static func bytesPerRow(format: ReducedGEMM.Format, dimension: Int) -> Int {
        2 * dimension + 20
    }

    /// Encodes rows `range` of `vectors` (row-major, `dimension` columns; finite values).
    ///
    /// 16 lanes at a time. Sums of squares accumulate in float lanes of `d / 16` terms each and
    /// are summed in double, so their relative error stays under `(d / 16 + 16) 2^-23`; the
    /// stored norms are rounded up by that plus `normAllowance`.
    public func encode(_ vectors: UnsafePointer<Float>, rows range: Range<Int>) {
        let d = dimension
        let groups = d / 16
        let allowance = 1 + Self.normAllowance + Double(groups + 16) * 0x1p-23
        let magic = SIMD16<Float>(repeating: 12_582_912)  // 1.5 * 2^23: adding it rounds to an integer
        // Quantized values within +-levels, stored on the A side as q + bias (bias = levels + 1):
        // the range oneDNN sums exactly on this CPU (`ReducedGEMM.int8Levels`).
        let levelsInteger = ReducedGEMM.int8Levels
        let levels = Float(levelsInteger), bias = levelsInteger + 1
        for row in range {
            let x = UnsafeRawPointer(vectors + row * d)
            var hatLanes = SIMD16<Float>.zero, errorLanes = SIMD16<Float>.zero, lengthLanes = SIMD16<Float>.zero
            var hatSquared = 0.0, errorSquared = 0.0, lengthSquared = 0.0
            switch format {
            case .int8:
                let absMask = SIMD16<UInt32>(repeating: 0x7FFF_FFFF)
                var largestLanes = SIMD16<Float>.zero
                for group in 0..<groups {
                    let value = x.loadUnaligned(fromByteOffset: group * 64, as: SIMD16<Float>.self)
                    let magnitude = unsafeBitCast(unsafeBitCast(value, to: SIMD16<UInt32>.self) & absMask, to: SIMD16<Float>.self)
                    largestLanes.replace(with: magnitude, where: magnitude .> largestLanes)
                }
                var largest = -VectorKernels.horizontalMin(-largestLanes)
                let xs = vectors + row * d
                for i in (groups * 16)..<d { largest = max(largest, abs(xs[i])) }
                let scale = largest > 0 ? largest / levels : 0
                let inverse = largest > 0 ? levels / largest : 0
                let q = signed! + row * d, u = unsigned! + row * d
                var sumLanes = SIMD16<Int32>.zero
                for group in 0..<groups {
                    let value = x.loadUnaligned(fromByteOffset: group * 64, as: SIMD16<Float>.self)
                    // |value * inverse| <= levels (to a rounding): the magic add rounds it to even.
                    let shifted = value * inverse + magic
                    let integers = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000
                    let kept = (shifted - magic) * scale
                    let residual = value - kept
                    hatLanes.addProduct(kept, kept)
                    errorLanes.addProduct(residual, residual)
                    lengthLanes.addProduct(value, value)
                    sumLanes &+= integers
                    for lane in 0..<16 {
                        q[group * 16 + lane] = Int8(truncatingIfNeeded: integers[lane])
                        u[group * 16 + lane] = UInt8(truncatingIfNeeded: integers[lane] &+ bias)
                    }
                }
                var sum = sumLanes.wrappedSum()
                for i in (groups * 16)..<d {
                    let value = Int32(max(-levels, min(levels, (xs[i] * inverse).rounded(.toNearestOrEven))))
                    q[i] = Int8(value)
                    u[i] = UInt8(value + bias)
                    sum += value
                    let kept = Double(scale) * Double(value)
                    hatSquared += kept * kept
                    let residual = Double(xs[i]) - kept
                    errorSquared += residual * residual
                    lengthSquared += Double(xs[i]) * Double(xs[i])
                }
                scales[row] = scale
                offsets[row] = bias * sum
            case .bf16:
                let h = halves! + row * d
                for group in 0..<groups {
                    let value = x.loadUnaligned(fromByteOffset: group * 64, as: SIMD16<Float>.self)
                    let bits = unsafeBitCast(value, to: SIMD16<UInt32>.self)
                    let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16
                    let kept = unsafeBitCast(rounded &<< 16, to: SIMD16<Float>.self)
                    let residual = value - kept
                    hatLanes.addProduct(kept, kept)
                    errorLanes.addProduct(residual, residual)
                    lengthLanes.addProduct(value, value)
                    for lane in 0..<16 { h[group * 16 + lane] = UInt16(truncatingIfNeeded: rounded[lane]) }
                }
                let xs = vectors + row * d
                for i in (groups * 16)..<d {
                    let bits = Self.bfloat16(xs[i])
                    h[i] = bits
                    let kept = Double(Float(bitPattern: UInt32(bits) << 16))
                    hatSquared += kept * kept
                    let residual = Double(xs[i]) - kept
                    errorSquared += residual * residual
                    lengthSquared += Double(xs[i]) * Double(xs[i])
                }
                scales[row] = 1
                offsets[row] = 0
            }
            for lane in 0..<16 {
                hatSquared += Double(hatLanes[lane])
                errorSquared += Double(errorLanes[lane])
                lengthSquared += Double(lengthLanes[lane])
            }
            hat[row] = Float(hatSquared.squareRoot() * allowance).nextUp
            error[row] = Float(errorSquared.squareRoot() * allowance).nextUp
            length[row] = Float(lengthSquared.squareRoot() * allowance).nextUp
        }
    }

    /// A float rounded to the nearest bfloat16 (ties to even), as its 16 bits. Finite inputs
    /// whose rounding overflows become infinity, as in every bf16 conversion.
    @inline(__always)
    public static func bfloat16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// Row `row`'s data for the A side (`UInt8` or bf16) of a product.
    public func aSide(_ row: Int) -> UnsafeRawPointer {
        format == .int8 ? UnsafeRawPointer(unsigned! + row * dimension) : UnsafeRawPointer(halves! + row * dimension)
    }

    /// Row `row`'s data for the B side (`Int8` or bf16) of a product.
    public func bSide(_ row: Int) -> UnsafeRawPointer {
        format == .int8 ? UnsafeRawPointer(signed! + row * dimension) : UnsafeRawPointer(halves! + row * dimension)
    }
}

/// What a tile scan needs besides the product when the product came from reduced rows: the
/// integer sums (int8; nil for bf16, whose products are the tile's float `dots`) and the rows'
/// and columns' scales, offsets and norms, each pointer local to the tile; and the largest
/// column norms of the tile, for a slack that is one number per row.
public struct ReducedTile {
    public var integers: UnsafePointer<Int32>?
    public var rowScales: UnsafePointer<Float>, columnScales: UnsafePointer<Float>
    public var columnOffsets: UnsafePointer<Int32>
    public var rowHat: UnsafePointer<Float>, rowError: UnsafePointer<Float>
    public var columnError: UnsafePointer<Float>, columnLength: UnsafePointer<Float>
    public var largestColumnError: Float = 0, largestColumnLength: Float = 0
    /// int8 sums of at most 2^22 in magnitude (127^2 d with d <= 256): converted in two steps.
    public var smallSums = false

    public init(
        integers: UnsafePointer<Int32>?, rows: ReducedRows, rowStart: Int, columns: ReducedRows, columnStart: Int, columnCount: Int
    ) {
        self.integers = integers
        rowScales = UnsafePointer(rows.scales + rowStart)
        columnScales = UnsafePointer(columns.scales + columnStart)
        columnOffsets = UnsafePointer(columns.offsets + columnStart)
        rowHat = UnsafePointer(rows.hat + rowStart)
        rowError = UnsafePointer(rows.error + rowStart)
        columnError = UnsafePointer(columns.error + columnStart)
        columnLength = UnsafePointer(columns.length + columnStart)
        for c in 0..<columnCount {
            largestColumnError = max(largestColumnError, columnError[c])
            largestColumnLength = max(largestColumnLength, columnLength[c])
        }
        smallSums = rows.dimension <= 256
    }
}

/// The inner products of a tile as a scan reads them.
///
/// Scans subtract a slack from each estimated score before comparing it with a bound. To keep
/// the common case cheap, `lanes` gives one slack per row that covers every column of the tile
/// (from the tile's largest column norms); only a group of 16 that passes with it asks for the
/// per-pair slack (`preciseSlack`, never larger) and is tested again.
protocol TileProducts {
    /// False for fp32 products, whose slack is zero (no second test).
    static var hasSlack: Bool { get }
    /// Products of row `r` with columns `start ..< start + 16`, and the row's slack.
    func lanes(row r: Int, from start: Int) -> (dots: SIMD16<Float>, slack: SIMD16<Float>)
    /// The per-pair slack of those 16 pairs.
    func preciseSlack(row r: Int, from start: Int) -> SIMD16<Float>
    /// One pair's product and its per-pair slack.
    func single(row r: Int, column c: Int) -> (dot: Float, slack: Float)
}

/// fp32 products from sgemm: the scans' own rounding margin covers them.
struct FloatProducts: TileProducts {
    let dots: UnsafeRawPointer
    let ldc: Int
    static var hasSlack: Bool { false }

    @inline(__always)
    func lanes(row r: Int, from start: Int) -> (dots: SIMD16<Float>, slack: SIMD16<Float>) {
        (dots.loadUnaligned(fromByteOffset: (r * ldc + start) * 4, as: SIMD16<Float>.self), .zero)
    }

    @inline(__always)
    func preciseSlack(row r: Int, from start: Int) -> SIMD16<Float> { .zero }

    @inline(__always)
    func single(row r: Int, column c: Int) -> (dot: Float, slack: Float) {
        (dots.load(fromByteOffset: (r * ldc + c) * 4, as: Float.self), 0)
    }
}

/// Products from reduced rows: their slack comes from the tile's norms (`ReducedTile`).
protocol ReducedTileProducts: TileProducts {
    var reduced: ReducedTile { get }
    /// |dotFactor| of the metric: how much of the product's error reaches the score.
    var factor: Float { get }
}

extension ReducedTileProducts {
    static var hasSlack: Bool { true }

    @inline(__always)
    func preciseSlack(row r: Int, from start: Int) -> SIMD16<Float> { slackLanes(reduced, factor: factor, row: r, from: start) }

    /// The row's slack against the whole tile, in every lane.
    @inline(__always)
    func rowSlackLanes(_ r: Int) -> SIMD16<Float> { SIMD16(repeating: rowSlack(reduced, factor: factor, row: r)) }
}

/// bf16 products (fp32 sums of bf16 inputs) with their slack.
struct HalfProducts: ReducedTileProducts {
    let dots: UnsafeRawPointer
    let ldc: Int
    let reduced: ReducedTile
    let factor: Float

    @inline(__always)
    func lanes(row r: Int, from start: Int) -> (dots: SIMD16<Float>, slack: SIMD16<Float>) {
        (dots.loadUnaligned(fromByteOffset: (r * ldc + start) * 4, as: SIMD16<Float>.self), rowSlackLanes(r))
    }

    @inline(__always)
    func single(row r: Int, column c: Int) -> (dot: Float, slack: Float) {
        (dots.load(fromByteOffset: (r * ldc + c) * 4, as: Float.self), slackSingle(reduced, factor: factor, row: r, column: c))
    }
}

/// int8 products: exact integer sums, offset and scaled here, with their slack.
struct IntegerProducts: ReducedTileProducts {
    let integers: UnsafeRawPointer
    let ldc: Int
    let reduced: ReducedTile
    let factor: Float

    @inline(__always)
    func lanes(row r: Int, from start: Int) -> (dots: SIMD16<Float>, slack: SIMD16<Float>) {
        (integerProducts(integers, ldc: ldc, row: r, from: start, rowScale: reduced.rowScales[r], columnScales: UnsafeRawPointer(reduced.columnScales),
                         columnOffsets: UnsafeRawPointer(reduced.columnOffsets), small: reduced.smallSums), rowSlackLanes(r))
    }

    @inline(__always)
    func single(row r: Int, column c: Int) -> (dot: Float, slack: Float) {
        let sum = integers.load(fromByteOffset: (r * ldc + c) * 4, as: Int32.self) &- reduced.columnOffsets[c]
        return (Float(sum) * (reduced.rowScales[r] * reduced.columnScales[c]), slackSingle(reduced, factor: factor, row: r, column: c))
    }
}

/// Products of row `r` with columns `start ..< start + 16` from int8 sums (`ReducedRows`'
/// encoding): `(sum - columnOffset) x rowScale x columnScale`; `small` for sums below 2^22.
@inline(__always)
func integerProducts(_ sums: UnsafeRawPointer, ldc: Int, row r: Int, from start: Int, rowScale: Float,
                     columnScales: UnsafeRawPointer, columnOffsets: UnsafeRawPointer, small: Bool) -> SIMD16<Float> {
    let exact = sums.loadUnaligned(fromByteOffset: (r * ldc + start) * 4, as: SIMD16<Int32>.self)
        &- columnOffsets.loadUnaligned(fromByteOffset: start * 4, as: SIMD16<Int32>.self)
    let scales = columnScales.loadUnaligned(fromByteOffset: start * 4, as: SIMD16<Float>.self)
    return (small ? smallExactFloats(exact) : exactFloats(exact)) * (rowScale * scales)
}

/// The slack of row `r` against any column of the tile: the bound with the tile's largest
/// column norms, at least every pair's.
@inline(__always)
func rowSlack(_ reduced: ReducedTile, factor: Float, row r: Int) -> Float {
    (reduced.rowHat[r] * reduced.largestColumnError + reduced.rowError[r] * reduced.largestColumnLength) * factor + ReducedRows.slackFloor
}

@inline(__always)
func slackLanes(_ reduced: ReducedTile, factor: Float, row r: Int, from start: Int) -> SIMD16<Float> {
    let columnError = UnsafeRawPointer(reduced.columnError).loadUnaligned(fromByteOffset: start * 4, as: SIMD16<Float>.self)
    let columnLength = UnsafeRawPointer(reduced.columnLength).loadUnaligned(fromByteOffset: start * 4, as: SIMD16<Float>.self)
    var bound = SIMD16<Float>(repeating: reduced.rowHat[r]) * columnError
    bound.addProduct(SIMD16<Float>(repeating: reduced.rowError[r]), columnLength)
    return bound * factor + ReducedRows.slackFloor
}

@inline(__always)
func slackSingle(_ reduced: ReducedTile, factor: Float, row r: Int, column c: Int) -> Float {
    (reduced.rowHat[r] * reduced.columnError[c] + reduced.rowError[r] * reduced.columnLength[c]) * factor + ReducedRows.slackFloor
}

/// Int32 lanes of magnitude below 2^22 to floats (exactly) in two instructions: `2^23 + 2^22 + v`
/// as float bits is that number, for `|v| < 2^22`.
@inline(__always)
func smallExactFloats(_ value: SIMD16<Int32>) -> SIMD16<Float> {
    unsafeBitCast(value &+ 0x4B40_0000, to: SIMD16<Float>.self) - 12_582_912
}

/// Int32 lanes to the nearest floats, in vector instructions (the standard library's generic
/// conversion runs lane by lane): the value is split into its signed high and unsigned low 16
/// bits, each converted exactly by the 2^23 bias trick (`(2^23 + v)` as float bits is `2^23 + v`
/// for `0 <= v < 2^23`), then recombined as `high * 65536 + low` with one rounding.
@inline(__always)
func exactFloats(_ value: SIMD16<Int32>) -> SIMD16<Float> {
    let bias = SIMD16<Int32>(repeating: 0x4B00_0000)  // the bits of 2^23 as a float
    let biasValue = SIMD16<Float>(repeating: 8_388_608)
    let low = unsafeBitCast((value & 0xFFFF) | bias, to: SIMD16<Float>.self) - biasValue
    // The high half, offset to be non-negative: (value >> 16) + 32768 lies in [0, 65536).
    let high = unsafeBitCast(((value &>> 16) &+ 32768) | bias, to: SIMD16<Float>.self) - (biasValue + 32768)
    return high * 65536 + low
}
