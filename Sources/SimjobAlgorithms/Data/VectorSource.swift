import Foundation
import SimjobHDF5
import SimjobKernels

/// A 2-D set of vectors in an HDF5 dataset, read by blocks of rows as Float32 whatever the
/// stored type, with every block checked for NaN, infinities and values whose squares overflow float32.
public final class VectorSource: @unchecked Sendable {
    public let reference: DatasetReference
    public let file: HDF5File
    public let dataset: HDF5Dataset

    public var rows: Int { dataset.rows }
    public var dimension: Int { dataset.columns }
    /// Bytes the whole set takes as Float32 in memory.
    public var floatBytes: Int { rows * dimension * 4 }

    /// Threads that decompress chunks while reading (`--threads`); nil uses every core.
    public let readThreads: Int

    public init(_ reference: DatasetReference, threads: Int? = nil) throws {
        self.reference = reference
        readThreads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        file = try HDF5File.open(reference.path)
        dataset = try file.dataset(reference.dataset)
        try dataset.requireMatrix()
        guard dataset.rows > 0, dataset.columns > 0 else {
            throw SimjobError("\(reference): empty dataset, shape \(dataset.shapeDescription)")
        }
    }

    /// The metric named by the file's root `distance` attribute, if it has one simjob knows.
    public func fileMetric() throws -> Metric? {
        guard let attribute = try file.attribute("distance") else { return nil }
        guard let value = attribute.stringValue else {
            throw SimjobError("\(reference.path): the 'distance' attribute is \(attribute), not text such as euclidean; pass --metric or fix the attribute")
        }
        guard let metric = Metric(name: value) else {
            throw SimjobError("\(reference.path): unsupported distance attribute '\(value)' (simjob supports euclidean, angular, ip)")
        }
        return metric
    }

    /// `explicit` when given, else the file's `distance` attribute, else an error.
    public func resolveMetric(_ explicit: Metric?) throws -> Metric {
        if let explicit { return explicit }
        if let metric = try fileMetric() { return metric }
        throw SimjobError("\(reference.path): no 'distance' attribute; pass --metric euclidean|angular|ip")
    }

    /// Reads rows `range` into `buffer` (`range.count x dimension`), rejecting NaN and infinity
    /// with the first bad row's number.
    public func read(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) throws {
        do {
            try dataset.readRowsParallel(range.lowerBound, range.count, into: buffer, threads: readThreads)
        } catch let error as HDF5Error {
            throw SimjobError(error.message)
        }
        if let bad = VectorKernels.firstNonFiniteRow(buffer, rows: range.count, dimension: dimension) {
            let row = range.lowerBound + bad
            let problem = VectorKernels.describeUnusableRow(buffer + bad * dimension, dimension: dimension)
            throw SimjobError("\(reference): row \(row) \(problem); clean or drop such rows first")
        }
    }

    /// Reads rows `range` into a new matrix, normalised to unit length for `angular`.
    public func readMatrix(_ range: Range<Int>, metric: Metric? = nil) throws -> FloatMatrix {
        let matrix = FloatMatrix(rows: range.count, columns: dimension)
        try read(range, into: matrix.pointer)
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
