import Foundation
import SimjobKernels

/// Rows of float vectors that an engine reads by blocks: the engines' view of a dataset. The
/// operations layer supplies one backed by an HDF5 dataset (`VectorSource`), checked for NaN,
/// infinities and overflowing values as it is read; engines never see paths or files.
public protocol RowSource: AnyObject, Sendable {
    var rows: Int { get }
    var dimension: Int { get }
    /// How messages name the set (`file:dataset`).
    var name: String { get }
    /// Reads rows `range` into `buffer` (`range.count x dimension`), throwing on unusable rows.
    func read(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) throws
    /// Rows `range` as a matrix mapped from the file that stores them, checked like `read`, when
    /// the storage allows it (contiguous float32 in the machine's byte order); nil to read.
    func mappedMatrix(_ range: Range<Int>) throws -> FloatMatrix?
}

extension RowSource {
    /// Bytes the whole set takes as Float32 in memory.
    public var floatBytes: Int { rows * dimension * 4 }

    public func mappedMatrix(_ range: Range<Int>) throws -> FloatMatrix? { nil }

    /// Reads rows `range` into a new matrix, normalised to unit length for `angular`: a mapping
    /// of the file where the source offers one (`mappedMatrix`), else a copy in memory (or in a
    /// spill file in `directory`).
    public func readMatrix(_ range: Range<Int>, metric: Metric? = nil, spillingTo directory: String? = nil) throws -> FloatMatrix {
        let matrix: FloatMatrix
        if directory == nil, let mapped = try mappedMatrix(range) {
            matrix = mapped
        } else {
            matrix = try directory.map { try FloatMatrix(rows: range.count, columns: dimension, spillingTo: $0) }
                ?? FloatMatrix(rows: range.count, columns: dimension)
            try read(range, into: matrix.pointer)
        }
        if metric?.normalizesVectors == true {
            VectorKernels.normalizeRows(matrix.pointer, rows: matrix.rows, dimension: dimension)
        }
        return matrix
    }

    /// Calls `body` with consecutive blocks of at most `blockRows` rows, reusing one buffer: the
    /// set streams through memory whatever its size.
    public func forEachBlock(
        blockRows: Int, _ body: (_ range: Range<Int>, _ block: UnsafeMutablePointer<Float>) throws -> Void
    ) throws {
        let blockRows = max(1, min(blockRows, rows))
        let buffer = FloatMatrix(rows: blockRows, columns: dimension)
        var start = 0
        while start < rows {
            try Cancellation.check()
            let range = start..<min(start + blockRows, rows)
            try read(range, into: buffer.pointer)
            try body(range, buffer.pointer)
            start = range.upperBound
        }
    }

    /// `count` rows drawn without replacement (seeded, kept in row order), read block by block
    /// so only the sample is held; normalised for angular. All rows when `count >= rows`.
    public func sampleRows(_ count: Int, seed: UInt64, metric: Metric? = nil) throws -> FloatMatrix {
        if count >= rows { return try readMatrix(0..<rows, metric: metric) }
        let chosen = sampleIndices(count, from: rows, seed: seed)
        let sample = FloatMatrix(rows: count, columns: dimension)
        var next = 0
        try forEachBlock(blockRows: 65_536) { range, block in
            while next < count && chosen[next] < range.upperBound {
                sample.row(next).update(from: block + (chosen[next] - range.lowerBound) * dimension, count: dimension)
                next += 1
            }
        }
        if metric?.normalizesVectors == true {
            VectorKernels.normalizeRows(sample.pointer, rows: count, dimension: dimension)
        }
        return sample
    }
}
