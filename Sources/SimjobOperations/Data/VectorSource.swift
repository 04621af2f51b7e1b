import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobKernels

/// A 2-D set of vectors in an HDF5 dataset, read by blocks of rows as Float32 whatever the
/// stored type, with every block checked for NaN, infinities and values whose squares overflow float32.
public final class VectorSource: RowSource, @unchecked Sendable {
    public let reference: DatasetReference
    public let file: HDF5File
    public let dataset: HDF5Dataset

    public var rows: Int { dataset.rows }
    public var dimension: Int { dataset.columns }
    public var name: String { reference.description }

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
        try dataset.readRowsParallel(range.lowerBound, range.count, into: buffer, threads: readThreads)
        try check(range, buffer)
    }

    /// Sets of at least this many bytes are mapped rather than read when their storage allows it.
    public static let mappingMinimumBytes = 16 << 20

    /// Rows `range` mapped from the file (`FloatMatrix.init?(mapping:...)`) when the dataset
    /// stores them as one contiguous run of little-endian float32 and they take at least
    /// `mappingMinimumBytes`; checked like `read`.
    public func mappedMatrix(_ range: Range<Int>) throws -> FloatMatrix? {
        guard range.count * dimension * 4 >= Self.mappingMinimumBytes, let (path, offset) = dataset.contiguousFloat32Rows,
              let matrix = FloatMatrix(mapping: path, offset: offset + range.lowerBound * dimension * 4, rows: range.count,
                                       columns: dimension, name: reference.path) else { return nil }
        try check(range, matrix.pointer)
        return matrix
    }

    /// Rejects NaN, infinities and overflowing values in rows `range`, held at `buffer`.
    private func check(_ range: Range<Int>, _ buffer: UnsafeMutablePointer<Float>) throws {
        if let bad = Self.firstUnusableRow(buffer, rows: range.count, dimension: dimension, threads: readThreads) {
            let row = range.lowerBound + bad
            let problem = VectorKernels.describeUnusableRow(buffer + bad * dimension, dimension: dimension)
            throw SimjobError("\(reference): row \(row) \(problem); clean or drop such rows first")
        }
    }

    /// `VectorKernels.firstNonFiniteRow` over `threads` threads for large blocks: the first
    /// unusable row of the earliest part that has one.
    static func firstUnusableRow(_ buffer: UnsafeMutablePointer<Float>, rows: Int, dimension: Int, threads: Int) -> Int? {
        let firsts = UnsafeMutablePointer<Int>.allocate(capacity: max(1, threads))
        firsts.initialize(repeating: Int.max, count: max(1, threads))
        defer { firsts.deallocate() }
        let shared = UnsafeSendable((buffer, firsts))
        let parts = RowParts.run(rows: rows, width: dimension, threads: threads) { part, range in
            let (buffer, firsts) = shared.value
            if let bad = VectorKernels.firstNonFiniteRow(buffer + range.lowerBound * dimension, rows: range.count, dimension: dimension) {
                firsts[part] = range.lowerBound + bad
            }
        }
        let first = (0..<parts).map { firsts[$0] }.min()!
        return first == Int.max ? nil : first
    }
}
