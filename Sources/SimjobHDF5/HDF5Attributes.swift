import CHDF5
import Foundation

/// An attribute's value. Strings cover both variable-length (as h5py writes them) and
/// fixed-length (as some published ann-benchmarks files have them).
public enum AttributeValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case ints([Int64])
    case doubles([Double])
    case strings([String])

    public var description: String {
        switch self {
        case .string(let value): return value
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .ints(let values): return "[" + values.map(String.init).joined(separator: ", ") + "]"
        case .doubles(let values): return "[" + values.map { String($0) }.joined(separator: ", ") + "]"
        case .strings(let values): return "[" + values.joined(separator: ", ") + "]"
        }
    }

    public var stringValue: String? {
        switch self {
        case .string(let value): return value
        case .strings(let values) where values.count == 1: return values[0]
        default: return nil
        }
    }

    public var intValue: Int64? {
        switch self {
        case .int(let value): return value
        case .ints(let values) where values.count == 1: return values[0]
        case .double(let value) where value.rounded() == value && abs(value) < 9.2e18: return Int64(value)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .double(let value): return value
        case .doubles(let values) where values.count == 1: return values[0]
        case .int(let value): return Double(value)
        case .ints(let values) where values.count == 1: return Double(values[0])
        default: return nil
        }
    }
}

/// Attribute reading and writing on any HDF5 object (root group, group or dataset).
enum HDF5Attributes {
    static func names(of object: hid_t) -> [String] {
        var info = H5O_info_t()
        guard H5Oget_info2(object, &info, UInt32(H5O_INFO_NUM_ATTRS)) >= 0 else { return [] }
        return namesByIndex(count: info.num_attrs) { index, buffer, size in
            H5Aget_name_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, index, buffer, size, sj_H5P_DEFAULT())
        }
    }

    static func all(of object: hid_t, where location: String) throws -> [(String, AttributeValue)] {
        try names(of: object).compactMap { name in
            try read(name, of: object, where: location).map { (name, $0) }
        }
    }

    /// Reads an attribute; nil when it does not exist.
    static func read(_ name: String, of object: hid_t, where location: String) throws -> AttributeValue? {
        guard H5Aexists(object, name) > 0 else { return nil }
        let attribute = H5Aopen(object, name, sj_H5P_DEFAULT())
        guard attribute >= 0 else { throw SimjobError("\(location): cannot open attribute '\(name)'") }
        defer { H5Aclose(attribute) }
        let type = H5Aget_type(attribute)
        defer { H5Tclose(type) }
        let space = H5Aget_space(attribute)
        defer { H5Sclose(space) }
        let count = max(Int(H5Sget_simple_extent_npoints(space)), 0)
        let failure = SimjobError("\(location): cannot read attribute '\(name)'")

        switch H5Tget_class(type) {
        case H5T_STRING:
            let strings = try readStrings(attribute, type: type, count: count, failure: failure)
            return strings.count == 1 ? .string(strings[0]) : .strings(strings)
        case H5T_INTEGER, H5T_ENUM:
            var values = [Int64](repeating: 0, count: count)
            let memoryType = H5Tget_class(type) == H5T_ENUM ? H5Tget_native_type(type, H5T_DIR_ASCEND) : sj_H5T_NATIVE_INT64()
            if H5Tget_class(type) == H5T_ENUM {
                // One-byte enums are h5py's bool; widen the raw bytes.
                defer { H5Tclose(memoryType) }
                var bytes = [UInt8](repeating: 0, count: count * H5Tget_size(type))
                guard H5Aread(attribute, memoryType, &bytes) >= 0, H5Tget_size(type) == 1 else { throw failure }
                values = bytes.map { Int64($0) }
            } else {
                guard H5Aread(attribute, memoryType, &values) >= 0 else { throw failure }
            }
            return values.count == 1 ? .int(values[0]) : .ints(values)
        case H5T_FLOAT:
            var values = [Double](repeating: 0, count: count)
            guard H5Aread(attribute, sj_H5T_NATIVE_DOUBLE(), &values) >= 0 else { throw failure }
            return values.count == 1 ? .double(values[0]) : .doubles(values)
        default:
            return nil
        }
    }

    private static func readStrings(_ attribute: hid_t, type: hid_t, count: Int, failure: SimjobError) throws -> [String] {
        let memoryType = H5Tcopy(sj_H5T_C_S1())
        defer { H5Tclose(memoryType) }
        H5Tset_cset(memoryType, H5Tget_cset(type))
        if H5Tis_variable_str(type) > 0 {
            H5Tset_size(memoryType, sj_H5T_VARIABLE())
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            guard H5Aread(attribute, memoryType, &pointers) >= 0 else { throw failure }
            // HDF5 allocated each string; it must free them too.
            defer { for pointer in pointers where pointer != nil { H5free_memory(pointer) } }
            return pointers.map { $0.map { String(cString: $0) } ?? "" }
        }
        let size = H5Tget_size(type)
        H5Tset_size(memoryType, size)
        H5Tset_strpad(memoryType, H5T_STR_NULLPAD)
        var bytes = [UInt8](repeating: 0, count: size * count)
        guard H5Aread(attribute, memoryType, &bytes) >= 0 else { throw failure }
        return (0..<count).map { index in
            let slice = bytes[(index * size)..<((index + 1) * size)]
            let trimmed = slice.prefix { $0 != 0 }
            let text = String(decoding: trimmed, as: UTF8.self)
            // Space-padded Fortran-style strings carry trailing blanks that are not content.
            return H5Tget_strpad(type) == H5T_STR_SPACEPAD ? String(text.reversed().drop { $0 == " " }.reversed()) : text
        }
    }

    /// Writes (or replaces) an attribute. Strings are written the way h5py writes a Python str:
    /// a scalar, variable-length, UTF-8 string.
    static func write(_ name: String, _ value: AttributeValue, on object: hid_t, where location: String) throws {
        if H5Aexists(object, name) > 0 { H5Adelete(object, name) }
        let failure = SimjobError("\(location): cannot write attribute '\(name)'")
        func create(_ fileType: hid_t, count: Int?, _ write: (hid_t) -> herr_t) throws {
            let space: hid_t
            if let count {
                var dims = [hsize_t(count)]
                space = H5Screate_simple(1, &dims, nil)
            } else {
                space = H5Screate(H5S_SCALAR)
            }
            defer { H5Sclose(space) }
            let attribute = H5Acreate2(object, name, fileType, space, sj_H5P_DEFAULT(), sj_H5P_DEFAULT())
            guard attribute >= 0 else { throw failure }
            defer { H5Aclose(attribute) }
            guard write(attribute) >= 0 else { throw failure }
        }
        switch value {
        case .string(let text):
            try writeStrings([text], scalar: true, create: create)
        case .strings(let texts):
            try writeStrings(texts, scalar: false, create: create)
        case .int(let number):
            var copy = number
            try create(sj_H5T_STD_I64LE(), count: nil) { H5Awrite($0, sj_H5T_NATIVE_INT64(), &copy) }
        case .ints(let numbers):
            try create(sj_H5T_STD_I64LE(), count: numbers.count) { attribute in
                numbers.withUnsafeBufferPointer { H5Awrite(attribute, sj_H5T_NATIVE_INT64(), $0.baseAddress) }
            }
        case .double(let number):
            var copy = number
            try create(sj_H5T_IEEE_F64LE(), count: nil) { H5Awrite($0, sj_H5T_NATIVE_DOUBLE(), &copy) }
        case .doubles(let numbers):
            try create(sj_H5T_IEEE_F64LE(), count: numbers.count) { attribute in
                numbers.withUnsafeBufferPointer { H5Awrite(attribute, sj_H5T_NATIVE_DOUBLE(), $0.baseAddress) }
            }
        }
    }

    private static func writeStrings(
        _ texts: [String], scalar: Bool,
        create: (hid_t, Int?, (hid_t) -> herr_t) throws -> Void
    ) throws {
        let stringType = H5Tcopy(sj_H5T_C_S1())
        defer { H5Tclose(stringType) }
        H5Tset_size(stringType, sj_H5T_VARIABLE())
        H5Tset_cset(stringType, H5T_CSET_UTF8)
        H5Tset_strpad(stringType, H5T_STR_NULLTERM)
        let cStrings = texts.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var pointers: [UnsafePointer<CChar>?] = cStrings.map { UnsafePointer($0) }
        try create(stringType, scalar ? nil : texts.count) { H5Awrite($0, stringType, &pointers) }
    }
}
