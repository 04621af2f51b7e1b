/// An owned, row-major `rows x columns` matrix of Float, 64-byte aligned for SIMD and BLAS.
public final class FloatMatrix: @unchecked Sendable {
    public let rows: Int
    public let columns: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(rows * columns, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(rows * columns, 1))
    }

    public convenience init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "values do not match the shape")
        self.init(rows: rows, columns: columns)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { pointer.deallocate() }

    public func row(_ index: Int) -> UnsafeMutablePointer<Float> { pointer + index * columns }

    public var byteCount: Int { rows * columns * 4 }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: rows * columns)) }
}
