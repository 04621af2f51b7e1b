import Foundation
import SimjobAlgorithms
import SimjobOperations
import SimjobHDF5
import SimjobJobs
import SimjobKernels

/// The two parsers users feed directly, as fuzzing entry points: each takes arbitrary bytes and
/// must end in a result or a clean error, never a crash, a hang or an invariant broken.
///
/// `simjob-fuzz` runs them under libFuzzer (`make fuzz`, built with `--sanitize fuzzer`), and the
/// test suite replays the committed corpus in `Fuzz/corpus/` through them.
public enum FuzzEntries {
    /// How an input ended: accepted (a plan, a searched index), refused with a message, or
    /// (index only) not writable as an HDF5 index at all.
    public enum Outcome: Equatable, Sendable {
        case accepted
        case refused(String)
        case notWritten
    }

    /// A job file: YAML parsing (Yams) and the job planner's validation.
    @discardableResult
    public static func jobFile(_ data: Data) -> Outcome {
        let text = String(decoding: data, as: UTF8.self)
        do {
            let document = try JobDocument(path: "fuzz.yaml", text: text)
            _ = try JobPlanner.plan(document)
            return .accepted
        } catch {
            // A clean error: what a user would see as a message.
            return .refused("\(error)")
        }
    }

    /// An index file: bytes decide the attributes, shapes and contents of an IVF-PQ index group
    /// (written with simjob's own HDF5 layer, so shapes and values are what HDF5 stores), which is
    /// then loaded, validated and searched. A loaded index must answer with ids in range (or -1)
    /// and distances that are not NaN.
    @discardableResult
    public static func index(_ data: Data) -> Outcome {
        var bytes = ByteReader(data)
        let folder = scratchFolder
        let path = folder + "/index.hdf5"
        unlink(path)
        InputRegistry.reset()
        do {
            try writeIndex(&bytes, to: path)
        } catch {
            return .notWritten  // the writer refused a shape: not the loader's concern
        }
        do {
            let index = try IVFPQIndex.load(from: HDF5File.open(path))
            let queries = FloatMatrix(rows: 1 + Int(bytes.byte() % 4), columns: index.dimension)
            for i in 0..<(queries.rows * queries.columns) { queries.pointer[i] = bytes.float(special: false) }
            var config = IVFPQSearchConfig()
            config.k = 1 + Int(bytes.byte() % 6)
            config.nprobe = 1 + Int(bytes.byte()) % max(index.nlist, 1)
            config.threads = 1
            var base: FloatMatrix?
            if bytes.byte() % 2 == 0, index.count > 0 {
                config.refine = 1 + Int(bytes.byte() % 3)
                let matrix = FloatMatrix(rows: index.count, columns: index.dimension)
                for i in 0..<(matrix.rows * matrix.columns) { matrix.pointer[i] = bytes.float(special: false) }
                base = matrix
            }
            let (table, _) = try index.search(queries, config: config, base: base)
            for row in 0..<table.rows {
                for (id, distance) in zip(table.ids(ofRow: row), table.distances(ofRow: row)) {
                    precondition(id == -1 || (id >= 0 && Int(id) < index.count), "search returned id \(id) of \(index.count)")
                    precondition(!distance.isNaN, "search returned a NaN distance")
                }
            }
            return .accepted
        } catch {
            return .refused("\(error)")
        }
    }

    /// A random-projection forest's file: bytes decide its attributes and arrays, usually a
    /// structure that could be a forest and sometimes not (children pointing back or past the
    /// end, unordered leaf starts, rows out of range). A loaded forest must search without
    /// looping or reading out of bounds and answer with ids in range (or -1).
    @discardableResult
    public static func forest(_ data: Data) -> Outcome {
        var bytes = ByteReader(data)
        let path = scratchFolder + "/forest.hdf5"
        unlink(path)
        InputRegistry.reset()
        do {
            try writeForest(&bytes, to: path)
        } catch {
            return .notWritten
        }
        do {
            let index = try RPForestIndex.load(from: HDF5File.open(path))
            let queries = FloatMatrix(rows: 1 + Int(bytes.byte() % 3), columns: index.dimension)
            for i in 0..<(queries.rows * queries.columns) { queries.pointer[i] = bytes.float(special: false) }
            var config = IVFPQSearchConfig(k: 1 + Int(bytes.byte()) % index.count, nprobe: 1)
            config.searchK = 1 + Int(bytes.byte()) * 4
            config.threads = 1
            let (table, _) = try index.search(queries, config: config, base: nil)
            for row in 0..<table.rows {
                for (id, distance) in zip(table.ids(ofRow: row), table.distances(ofRow: row)) {
                    precondition(id == -1 || (id >= 0 && Int(id) < index.count), "search returned id \(id) of \(index.count)")
                    precondition(id == -1 || !distance.isNaN, "search returned a NaN distance")
                }
            }
            return .accepted
        } catch {
            return .refused("\(error)")
        }
    }

    static func writeForest(_ bytes: inout ByteReader, to path: String) throws {
        let file = try HDF5File.create(path)
        defer { file.close() }
        let flags = bytes.byte()
        let d = 1 + Int(bytes.byte() % 6)
        let count = Int(bytes.byte() % 24)
        let trees = Int(bytes.byte() % 4)
        let splits = Int(bytes.byte() % 7)
        let leaves = trees + Int(bytes.byte() % 8)
        func skew(_ value: Int, _ bit: UInt8) -> Int { flags & bit != 0 ? value + Int(bytes.byte() % 3) - 1 : value }
        let group = "index"
        try file.createGroup(group)
        try file.setAttribute("type", .string(flags & 0x80 != 0 ? "RPTree" : "RPTrees"), on: group)
        try file.setAttribute("format_version", .int(Int64(bytes.byte() % 3)), on: group)
        try file.setAttribute("metric", .string(["euclidean", "angular", "ip", "hamming"][Int(bytes.byte() % 4)]), on: group)
        for (name, value) in [("dimension", skew(d, 0x01)), ("count", skew(count, 0x02)), ("trees", trees), ("leaf_size", Int(bytes.byte() % 5)),
                              ("splits", skew(splits, 0x04)), ("leaves", leaves)] {
            try file.setAttribute(name, .int(Int64(value)), on: group)
        }
        func floats(_ n: Int) -> [Float] { (0..<n).map { _ in bytes.float(special: true) } }
        if splits > 0 {
            try file.write("\(group)/normals", floats(splits * d), shape: [splits, d])
            try file.write("\(group)/offsets", floats(splits), shape: [splits])
            // Usually forward (a later split) or a leaf; with flag 0x08 any small value.
            let children = (0..<(2 * splits)).map { slot -> Int32 in
                let byte = bytes.byte()
                if flags & 0x08 != 0 { return Int32(Int8(bitPattern: byte)) }
                let later = splits - slot / 2 - 1
                return byte % 2 == 0 && later > 0 ? Int32(slot / 2 + 1 + Int(byte / 2) % later) : -Int32(1 + Int(byte / 2) % max(leaves, 1))
            }
            try file.write("\(group)/children", children, shape: [splits, 2])
        }
        if trees > 0 {
            let roots = (0..<trees).map { _ -> Int32 in
                let byte = bytes.byte()
                return splits > 0 && byte % 2 == 0 ? Int32(Int(byte / 2) % splits) : -Int32(1 + Int(byte / 2) % max(leaves, 1))
            }
            try file.write("\(group)/roots", roots, shape: [trees])
        }
        // Leaf starts ascending from 0 to trees x count, sometimes not.
        let total = trees * count
        var starts: [Int32] = [0]
        for leaf in 0..<leaves { starts.append(leaf == leaves - 1 ? Int32(total) : min(Int32(total), starts.last! + Int32(bytes.byte() % 6))) }
        if flags & 0x10 != 0, starts.count > 1 { starts[Int(bytes.byte()) % starts.count] = Int32(Int8(bitPattern: bytes.byte())) }
        try file.write("\(group)/leaf_starts", starts, shape: [starts.count])
        if total > 0 {
            let rows = (0..<total).map { _ -> Int32 in flags & 0x20 != 0 ? Int32(Int8(bitPattern: bytes.byte())) : Int32(Int(bytes.byte()) % max(count, 1)) }
            try file.write("\(group)/leaf_rows", rows, shape: [total])
        }
        if count > 0 { try file.write("\(group)/vectors", floats(count * d), shape: [count, d]) }
    }

    static let scratchFolder: String = {
        let folder = NSTemporaryDirectory() + "/simjob-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }()

    static func writeIndex(_ bytes: inout ByteReader, to path: String) throws {
        let file = try HDF5File.create(path)
        defer { file.close() }
        let flags = bytes.byte()
        let d = 1 + Int(bytes.byte() % 12)
        let m = Int(bytes.byte() % 5)
        let nbits = Int(bytes.byte() % 10)
        let nlist = Int(bytes.byte() % 6)
        let count = Int(bytes.byte() % 40)
        func skew(_ value: Int, _ bit: UInt8) -> Int { flags & bit != 0 ? value + Int(bytes.byte() % 3) - 1 : value }
        let group = "index"
        try file.createGroup(group)
        try file.setAttribute("type", .string(flags & 0x80 != 0 ? "IVFPQ?" : "IVFPQ"), on: group)
        try file.setAttribute("format_version", .int(Int64(bytes.byte() % 3)), on: group)
        try file.setAttribute("metric", .string(["euclidean", "angular", "ip", "hamming"][Int(bytes.byte() % 4)]), on: group)
        try file.setAttribute("dimension", .int(Int64(skew(d, 0x01))), on: group)
        try file.setAttribute("nlist", .int(Int64(skew(nlist, 0x02))), on: group)
        try file.setAttribute("m", .int(Int64(m)), on: group)
        try file.setAttribute("nbits", .int(Int64(nbits)), on: group)
        try file.setAttribute("count", .int(Int64(skew(count, 0x04))), on: group)
        let ksub = nbits <= 8 ? 1 << nbits : 1
        let dsub = m > 0 ? max(d / m, 1) : 1
        func floats(_ n: Int) -> [Float] { (0..<n).map { _ in bytes.float(special: true) } }
        let centroidRows = max(skew(nlist, 0x08), 0)
        if centroidRows > 0 { try file.write("\(group)/coarse_centroids", floats(centroidRows * d), shape: [centroidRows, d]) }
        if m > 0 { try file.write("\(group)/pq_codebooks", floats(m * ksub * dsub), shape: [m * ksub, dsub]) }
        // Offsets: usually a valid partition, sometimes raw bytes.
        var offsets: [Int64] = [0]
        for list in 0..<max(nlist, 0) {
            offsets.append(list == nlist - 1 ? Int64(count) : min(Int64(count), offsets.last! + Int64(bytes.byte() % 8)))
        }
        if flags & 0x10 != 0, offsets.count > 1 { offsets[Int(bytes.byte()) % offsets.count] = Int64(Int8(bitPattern: bytes.byte())) }
        try file.write("\(group)/list_offsets", offsets, shape: [offsets.count])
        var ids = (0..<count).map(Int32.init).shuffledDeterministically(&bytes)
        if flags & 0x20 != 0, !ids.isEmpty { ids[Int(bytes.byte()) % ids.count] = Int32(bitPattern: bytes.uint32()) }
        if count > 0 { try file.write("\(group)/ids", ids, shape: [count]) }
        let codeColumns = max(skew(m, 0x40), 1)
        let codes = (0..<(count * codeColumns)).map { _ in flags & 0x20 != 0 ? bytes.byte() : bytes.byte() % UInt8(min(ksub, 256) == 256 ? 255 : ksub) }
        if count > 0 { try file.write("\(group)/codes", codes, shape: [count, codeColumns]) }
    }
}

/// Reads fuzz bytes as small values; past the end it returns zeros (inputs of any length work).
public struct ByteReader {
    let data: [UInt8]
    var position = 0

    public init(_ data: Data) { self.data = [UInt8](data) }

    public mutating func byte() -> UInt8 {
        guard position < data.count else { return 0 }
        defer { position += 1 }
        return data[position]
    }

    mutating func uint32() -> UInt32 {
        (0..<4).reduce(UInt32(0)) { value, _ in value << 8 | UInt32(byte()) }
    }

    /// A float: mostly small values, with `special`, sometimes NaN, infinities or huge values.
    mutating func float(special: Bool) -> Float {
        let selector = byte()
        if special {
            switch selector {
            case 250: return .nan
            case 251: return .infinity
            case 252: return -.infinity
            case 253: return 3e19
            case 254: return Float(bitPattern: uint32())
            default: break
            }
        }
        return (Float(Int8(bitPattern: selector)) / 16) + Float(byte()) / 4096
    }
}

extension Array {
    /// A permutation driven by the fuzz bytes (Fisher-Yates).
    func shuffledDeterministically(_ bytes: inout ByteReader) -> [Element] {
        var result = self
        guard result.count > 1 else { return result }
        for i in stride(from: result.count - 1, to: 0, by: -1) {
            result.swapAt(i, Int(bytes.byte()) % (i + 1))
        }
        return result
    }
}
