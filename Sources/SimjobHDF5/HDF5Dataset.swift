import CHDF5
import Foundation

/// The element type of a dataset as stored in the file.
public enum ElementType: Equatable, Sendable, CustomStringConvertible {
    case float16, float32, float64
    case int8, int16, int32, int64
    case uint8, uint16, uint32, uint64
    /// h5py's bool: an enum over a one-byte integer.
    case bool
    case string
    case other(String)

    public var isNumeric: Bool {
        switch self {
        case .string, .other: return false
        default: return true
        }
    }

    public var isInteger: Bool {
        switch self {
        case .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64, .bool: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .float16: return "float16"
        case .float32: return "float32"
        case .float64: return "float64"
        case .int8: return "int8"
        case .int16: return "int16"
        case .int32: return "int32"
        case .int64: return "int64"
        case .uint8: return "uint8"
        case .uint16: return "uint16"
        case .uint32: return "uint32"
        case .uint64: return "uint64"
        case .bool: return "bool"
        case .string: return "string"
        case .other(let name): return name
        }
    }

    init(fileType type: hid_t) {
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_FLOAT:
            self = size == 2 ? .float16 : size == 4 ? .float32 : size == 8 ? .float64 : .other("float\(size * 8)")
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            switch (size, signed) {
            case (1, true): self = .int8
            case (2, true): self = .int16
            case (4, true): self = .int32
            case (8, true): self = .int64
            case (1, false): self = .uint8
            case (2, false): self = .uint16
            case (4, false): self = .uint32
            case (8, false): self = .uint64
            default: self = .other("int\(size * 8)")
            }
        case H5T_ENUM:
            self = size == 1 ? .bool : .other("enum\(size * 8)")
        case H5T_STRING:
            self = .string
        case H5T_COMPOUND:
            self = .other("compound")
        default:
            self = .other("opaque")
        }
    }
}

/// How a dataset is stored in a file created by simjob.
public enum StorageType: Sendable {
    case float32, float64, int32, int64, uint8

    var fileType: hid_t {
        switch self {
        case .float32: return sj_H5T_IEEE_F32LE()
        case .float64: return sj_H5T_IEEE_F64LE()
        case .int32: return sj_H5T_STD_I32LE()
        case .int64: return sj_H5T_STD_I64LE()
        case .uint8: return sj_H5T_STD_U8LE()
        }
    }

    var byteSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .float64, .int64: return 8
        case .uint8: return 1
        }
    }
}

/// A Swift scalar type that HDF5 reads into and writes from. HDF5 converts between the stored
/// and the memory type (float64 to Float, int64 to Int32, ...) during the read.
public protocol HDF5Scalar: Numeric, Sendable {
    static var memoryType: hid_t { get }
    static var defaultStorage: StorageType { get }
    init(truncatingFromInt64 value: Int64)
}

extension Float: HDF5Scalar {
    public static var memoryType: hid_t { sj_H5T_NATIVE_FLOAT() }
    public static var defaultStorage: StorageType { .float32 }
    public init(truncatingFromInt64 value: Int64) { self = Float(value) }
}
extension Double: HDF5Scalar {
    public static var memoryType: hid_t { sj_H5T_NATIVE_DOUBLE() }
    public static var defaultStorage: StorageType { .float64 }
    public init(truncatingFromInt64 value: Int64) { self = Double(value) }
}
extension Int32: HDF5Scalar {
    public static var memoryType: hid_t { sj_H5T_NATIVE_INT32() }
    public static var defaultStorage: StorageType { .int32 }
    public init(truncatingFromInt64 value: Int64) { self = Int32(truncatingIfNeeded: value) }
}
extension Int64: HDF5Scalar {
    public static var memoryType: hid_t { sj_H5T_NATIVE_INT64() }
    public static var defaultStorage: StorageType { .int64 }
    public init(truncatingFromInt64 value: Int64) { self = value }
}
extension UInt8: HDF5Scalar {
    public static var memoryType: hid_t { sj_H5T_NATIVE_UINT8() }
    public static var defaultStorage: StorageType { .uint8 }
    public init(truncatingFromInt64 value: Int64) { self = UInt8(truncatingIfNeeded: value) }
}

/// A 1-D or 2-D dataset, read and written by blocks of rows (hyperslabs on the first dimension),
/// so sets larger than memory stream through a fixed-size buffer.
public final class HDF5Dataset: @unchecked Sendable {
    public let file: HDF5File
    public let name: String
    public let shape: [Int]
    public let elementType: ElementType
    let id: hid_t
    let fileType: hid_t

    init(file: HDF5File, name: String, id: hid_t) throws {
        self.file = file
        self.name = name
        self.id = id
        self.fileType = H5Dget_type(id)
        self.elementType = ElementType(fileType: fileType)
        let space = H5Dget_space(id)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        if rank > 0 { H5Sget_simple_extent_dims(space, &dims, nil) }
        self.shape = rank > 0 ? dims.map { Int($0) } : []
    }

    deinit {
        H5Tclose(fileType)
        H5Dclose(id)
    }

    /// Names HDF5's registered filter ids that other tools write (h5py with hdf5plugin, PyTables).
    static let knownFilters: [Int32: String] = [
        307: "bzip2", 32000: "lzf", 32001: "blosc", 32004: "lz4", 32008: "bitshuffle", 32013: "zfp",
        32015: "zstd", 32017: "sz", 32026: "blosc2",
    ]

    /// Throws, naming the filter, when the dataset's chunks are compressed with a filter this
    /// HDF5 library does not have: the file is fine, this library just cannot decode it.
    func checkFiltersAvailable() throws {
        let properties = H5Dget_create_plist(id)
        guard properties >= 0 else { return }
        defer { H5Pclose(properties) }
        let count = H5Pget_nfilters(properties)
        guard count > 0 else { return }
        for index in 0..<UInt32(count) {
            var flags: UInt32 = 0
            var elements = 0
            var values = [UInt32](repeating: 0, count: 8)
            var nameBuffer = [CChar](repeating: 0, count: 256)
            var config: UInt32 = 0
            let filter = H5Pget_filter2(properties, index, &flags, &elements, &values, nameBuffer.count, &nameBuffer, &config)
            guard filter >= 0, H5Zfilter_avail(filter) <= 0 else { continue }
            sj_clear_errors()
            let stored = String(decoding: nameBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let name = HDF5Dataset.knownFilters[filter] ?? (stored.isEmpty ? "unknown" : stored)
            throw SimjobError("\(location): compressed with the '\(name)' filter (HDF5 filter id \(filter)), which this HDF5 library lacks; "
                + "the file is not damaged: rewrite the dataset with gzip (h5py with hdf5plugin can read it), or install the filter plugin and set HDF5_PLUGIN_PATH")
        }
    }

    /// `file:dataset`, the way every message names a dataset.
    public var location: String { "\(file.path):\(name)" }

    public var rows: Int { shape.first ?? 0 }
    /// Elements per row: the second dimension of a 2-D dataset, 1 for a 1-D one.
    public var columns: Int { shape.count >= 2 ? shape[1] : 1 }

    /// Checks that this is a 2-D numeric dataset, the shape every vector set and id matrix has.
    public func requireMatrix() throws {
        guard shape.count == 2 else {
            throw SimjobError("\(location): expected a 2-D dataset (rows x dimensions), found \(shape.count)-D shape \(shapeDescription)")
        }
        guard elementType.isNumeric else {
            throw SimjobError("\(location): elements are \(elementType), which simjob cannot read as numbers (it reads floats of 16, 32 and 64 bits and integers)")
        }
    }

    public var shapeDescription: String { "(" + shape.map(String.init).joined(separator: ", ") + ")" }

    /// Reads rows `start ..< start + count` into `buffer` (row-major, `count x columns`),
    /// converting the stored element type to `T`.
    public func readRows<T: HDF5Scalar>(_ start: Int, _ count: Int, into buffer: UnsafeMutablePointer<T>) throws {
        precondition(start >= 0 && count >= 0 && start + count <= rows, "row range out of bounds")
        guard count > 0, columns > 0 else { return }
        let (fileSpace, memorySpace) = try selectRows(start, count)
        defer { H5Sclose(fileSpace); H5Sclose(memorySpace) }
        if elementType == .bool {
            // HDF5 converts an enum only to another enum: read the raw bytes, widen them here.
            let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: count * columns)
            defer { bytes.deallocate() }
            let memoryType = H5Tget_native_type(fileType, H5T_DIR_ASCEND)
            defer { H5Tclose(memoryType) }
            guard H5Dread(id, memoryType, memorySpace, fileSpace, sj_H5P_DEFAULT(), bytes) >= 0 else {
                throw readError(start, count)
            }
            for index in 0..<(count * columns) { buffer[index] = T(truncatingFromInt64: Int64(bytes[index])) }
            return
        }
        guard elementType.isNumeric else {
            throw SimjobError("\(location): cannot read \(elementType) elements as numbers")
        }
        guard H5Dread(id, T.memoryType, memorySpace, fileSpace, sj_H5P_DEFAULT(), buffer) >= 0 else {
            throw readError(start, count)
        }
    }

    /// Reads float32 rows like `readRows`, on `threads` threads where the layout allows:
    /// compressed chunks decompressed in parallel (`ParallelChunkReader`), contiguous
    /// unfiltered data read from the file in parallel (`ContiguousReader`).
    public func readRowsParallel(_ start: Int, _ count: Int, into buffer: UnsafeMutablePointer<Float>, threads: Int) throws {
        precondition(start >= 0 && count >= 0 && start + count <= rows, "row range out of bounds")
        guard count > 0 else { return }
        if threads > 1, let reader = ParallelChunkReader(self), reader.read(start, count, into: buffer, threads: threads) { return }
        if threads > 1, count * columns >= Self.parallelReadMinimum, let reader = ContiguousReader(self),
           reader.read(start, count, into: buffer, threads: threads) { return }
        try readRows(start, count, into: buffer)
    }

    /// Where the rows lie in the file when it holds them as one contiguous, unfiltered run of
    /// little-endian float32 values (what `ContiguousReader` reads, and what a caller may map
    /// instead of reading): the file's path and the byte offset of row 0. nil otherwise.
    public var contiguousFloat32Rows: (path: String, offset: Int)? {
        ContiguousReader(self).map { ($0.path, $0.offset) }
    }

    /// Whether rows are stored as little-endian float32, as the parallel readers take them.
    var isLittleEndianFloat32Matrix: Bool {
        shape.count == 2 && elementType == .float32 && H5Tget_order(fileType) == H5T_ORDER_LE
    }

    /// `body` with the dataset's creation property list (layout, chunks, filters); nil when
    /// HDF5 cannot give it.
    func withCreationProperties<R>(_ body: (hid_t) -> R?) -> R? {
        let properties = H5Dget_create_plist(id)
        guard properties >= 0 else { return nil }
        defer { H5Pclose(properties) }
        return body(properties)
    }

    /// Storage in chunks of whole rows: rows per chunk and the filter pipeline, in order, each
    /// filter with its parameters.
    struct RowChunks {
        var rows: Int
        var filters: [(id: H5Z_filter_t, values: [UInt32])]
    }

    /// How the dataset is chunked, when its chunks hold whole rows (as the parallel chunk
    /// reader and writer need); nil for other layouts.
    var rowChunks: RowChunks? {
        withCreationProperties { properties in
            guard H5Pget_layout(properties) == H5D_CHUNKED, shape.count == 1 || shape.count == 2 else { return nil }
            let rank = Int32(shape.count)
            var chunk = [hsize_t](repeating: 0, count: shape.count)
            guard H5Pget_chunk(properties, rank, &chunk) == rank, chunk[0] > 0,
                  shape.count == 1 || Int(chunk[1]) == columns else { return nil }
            let filters = (0..<H5Pget_nfilters(properties)).map { index in
                var flags: UInt32 = 0, config: UInt32 = 0
                var values = [UInt32](repeating: 0, count: 8)
                var count = values.count
                let filter = H5Pget_filter2(properties, UInt32(index), &flags, &count, &values, 0, nil, &config)
                return (id: filter, values: Array(values.prefix(min(count, values.count))))
            }
            return RowChunks(rows: Int(chunk[0]), filters: filters)
        }
    }

    /// Bytes from which a whole dataset's chunks are compressed on several threads (two of
    /// `HDF5File.createDataset`'s chunks).
    static let parallelWriteMinimum = 2 << 20

    /// Values from which an unfiltered contiguous read is split across threads (4 MiB).
    static let parallelReadMinimum = 1 << 20

    /// Reads the whole dataset.
    public func readAll<T: HDF5Scalar>(as type: T.Type = T.self) throws -> [T] {
        var result = [T](repeating: 0, count: rows * columns)
        guard !result.isEmpty else { return result }
        try result.withUnsafeMutableBufferPointer { try readRows(0, rows, into: $0.baseAddress!) }
        return result
    }

    /// Writes rows `start ..< start + count` from `buffer` (row-major, `count x columns`).
    public func writeRows<T: HDF5Scalar>(_ start: Int, _ count: Int, from buffer: UnsafePointer<T>) throws {
        precondition(start >= 0 && count >= 0 && start + count <= rows, "row range out of bounds")
        guard count > 0, columns > 0 else { return }
        // A whole large dataset stored as it is held compresses on every core.
        if start == 0, count == rows, count * columns * MemoryLayout<T>.size >= Self.parallelWriteMinimum,
           H5Tequal(T.memoryType, fileType) > 0, let writer = ParallelChunkWriter(self, elementSize: MemoryLayout<T>.size),
           try writer.write(UnsafeRawPointer(buffer), threads: ProcessInfo.processInfo.activeProcessorCount) { return }
        let (fileSpace, memorySpace) = try selectRows(start, count)
        defer { H5Sclose(fileSpace); H5Sclose(memorySpace) }
        errno = 0
        guard H5Dwrite(id, T.memoryType, memorySpace, fileSpace, sj_H5P_DEFAULT(), buffer) >= 0 else {
            let code = errno
            throw SimjobError("\(location): cannot write rows \(start)..<\(start + count): \(HDF5Diagnosis.cause(fallbackErrno: code) ?? "I/O error")")
        }
    }

    private func selectRows(_ start: Int, _ count: Int) throws -> (hid_t, hid_t) {
        let fileSpace = H5Dget_space(id)
        guard fileSpace >= 0 else { throw SimjobError("\(location): cannot read the dataset's shape (corrupt file?)") }
        var offset: [hsize_t] = [hsize_t(start)]
        var extent: [hsize_t] = [hsize_t(count)]
        if shape.count == 2 {
            offset.append(0)
            extent.append(hsize_t(columns))
        }
        guard H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &offset, nil, &extent, nil) >= 0 else {
            H5Sclose(fileSpace)
            throw SimjobError("\(location): cannot select rows \(start)..<\(start + count)")
        }
        let memorySpace = H5Screate_simple(Int32(extent.count), &extent, nil)
        guard memorySpace >= 0 else {
            H5Sclose(fileSpace)
            throw SimjobError("\(location): cannot allocate a selection of rows \(start)..<\(start + count)")
        }
        return (fileSpace, memorySpace)
    }

    private func readError(_ start: Int, _ count: Int) -> SimjobError {
        let cause = HDF5Diagnosis.cause()
        return SimjobError("\(location): cannot read rows \(start)..<\(start + count) (\(cause.map { "corrupt or truncated file: " + $0 } ?? "corrupt or truncated file"))")
    }

    // MARK: attributes

    public func attributes() throws -> [(String, AttributeValue)] {
        try HDF5Attributes.all(of: id, where: location)
    }

    public func attribute(_ name: String) throws -> AttributeValue? {
        try HDF5Attributes.read(name, of: id, where: location)
    }

    public func setAttribute(_ name: String, _ value: AttributeValue) throws {
        try HDF5Attributes.write(name, value, on: id, where: location)
    }
}
