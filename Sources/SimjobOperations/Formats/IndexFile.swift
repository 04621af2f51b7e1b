import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobKernels

/// Saving and loading an IVF-PQ index in an HDF5 group (`index` by default):
///
///     index/                    attributes: type = "IVFPQ", format_version, metric, dimension,
///                               nlist, m, nbits, count, source
///     index/coarse_centroids    float32 [nlist, d]
///     index/pq_codebooks        float32 [m * 2^nbits, d / m]   (sub-quantizer s, centroid j: row s * 2^nbits + j)
///     index/list_offsets        int64   [nlist + 1]            (list l: entries offsets[l] ..< offsets[l + 1])
///     index/ids                 int32   [count]                (row ids of the source, by list)
///     index/codes               uint8   [count, m]
extension IVFPQIndex {
    public static let formatVersion: Int64 = 1

    public func save(to file: HDF5File, group: String = "index") throws {
        try file.createGroup(group)
        try file.setAttribute("type", .string("IVFPQ"), on: group)
        try file.setAttribute("format_version", .int(IVFPQIndex.formatVersion), on: group)
        try file.setAttribute("metric", .string(metric.rawValue), on: group)
        try file.setAttribute("dimension", .int(Int64(dimension)), on: group)
        try file.setAttribute("nlist", .int(Int64(nlist)), on: group)
        try file.setAttribute("m", .int(Int64(pq.m)), on: group)
        try file.setAttribute("nbits", .int(Int64(pq.nbits)), on: group)
        try file.setAttribute("count", .int(Int64(count)), on: group)
        try file.setAttribute("source", .string(source), on: group)
        try file.write("\(group)/coarse_centroids", coarseCentroids.array, shape: [nlist, dimension])
        try file.write("\(group)/pq_codebooks", pq.codebooks.array, shape: [pq.m * pq.ksub, pq.dsub])
        try file.write("\(group)/list_offsets", listOffsets.map(Int64.init), shape: [nlist + 1])
        try file.write("\(group)/ids", ids, shape: [count])
        try file.write("\(group)/codes", codes, shape: [count, pq.m])
    }

    public static func load(from file: HDF5File, group: String = "index") throws -> IVFPQIndex {
        let stored = try IndexGroup(file, group, type: "IVFPQ", named: "an IVF-PQ index", formatVersion: formatVersion)
        let place = stored.place, metric = stored.metric
        func integer(_ name: String) throws -> Int { try stored.integer(name) }
        func dataset(_ name: String, shape: [Int], integer: Bool) throws -> HDF5Dataset { try stored.dataset(name, shape: shape, integer: integer) }
        let d = try integer("dimension"), nlist = try integer("nlist"), m = try integer("m"), nbits = try integer("nbits"), count = try integer("count")
        let source = try file.attribute("source", of: group)?.stringValue ?? ""
        guard (1...65_536).contains(d), (1...16_777_216).contains(nlist), (0...Int(Int32.max)).contains(count), (1...d).contains(m) else {
            throw SimjobError("\(place): attributes dimension = \(d), nlist = \(nlist), m = \(m), count = \(count) are out of range (altered or corrupt index)")
        }
        /// Integers read at full width, so a value the narrow type cannot hold is seen as it is
        /// stored (not clamped into range) by the checks.
        func wideIntegers(_ name: String, shape: [Int]) throws -> [Int64] {
            try dataset(name, shape: shape, integer: true).readAll(as: Int64.self)
        }
        do { try ProductQuantizer.validate(dimension: d, m: m, nbits: nbits) } catch let error as SimjobError {
            throw SimjobError("\(place): \(error.message) (altered or corrupt index)")
        }
        let ksub = 1 << nbits
        let centroids = FloatMatrix(rows: nlist, columns: d, values: try dataset("coarse_centroids", shape: [nlist, d], integer: false).readAll(as: Float.self))
        let codebooks = FloatMatrix(rows: m * ksub, columns: d / m, values: try dataset("pq_codebooks", shape: [m * ksub, d / m], integer: false).readAll(as: Float.self))
        let offsets = try wideIntegers("list_offsets", shape: [nlist + 1]).map(Int.init)
        /// Integers of the narrow type simjob writes, read directly; any other integer type read
        /// wide and range-checked first, so no value is clamped into range unseen.
        func narrow<T: HDF5Scalar & FixedWidthInteger>(_ name: String, shape: [Int], as type: T.Type, native: ElementType, limit: Int,
                                                      describe: (Int, Int64) -> String) throws -> [T] {
            let data = try dataset(name, shape: shape, integer: true)
            if data.elementType == native { return try data.readAll(as: T.self) }
            let wide = try data.readAll(as: Int64.self)
            if let position = wide.firstIndex(where: { $0 < 0 || $0 >= Int64(limit) }) {
                throw SimjobError("\(place)/\(name): \(describe(position, wide[position])) (altered or corrupt index)")
            }
            return wide.map { T($0) }
        }
        let ids = try narrow("ids", shape: [count], as: Int32.self, native: .int32, limit: count) { position, value in
            "entry \(position) is \(value), outside 0..<\(count)"
        }
        let codes = try narrow("codes", shape: [count, m], as: UInt8.self, native: .uint8, limit: ksub) { position, value in
            "row \(position / m), column \(position % m) is \(value), not in 0..<2^nbits = \(ksub)"
        }
        try IndexValidation.check(place: place, centroids: centroids, codebooks: codebooks, offsets: offsets, count: count, ids: ids, codes: codes, nbits: nbits)
        let pq = ProductQuantizer(dimension: d, m: m, nbits: nbits, codebooks: codebooks)
        return IVFPQIndex(metric: metric, pq: pq, coarseCentroids: centroids, listOffsets: offsets, ids: ids, codes: codes, source: source)
    }
}

/// The checks an index passes before it is used: a file that was altered or damaged (by hand, a
/// bad copy, another tool) is refused with the dataset and its first bad entry, rather than
/// crashing the search or returning garbage.
enum IndexValidation {
    static func check(
        place: String, centroids: FloatMatrix, codebooks: FloatMatrix, offsets: [Int], count: Int, ids: [Int32], codes: [UInt8], nbits: Int
    ) throws {
        let altered = "(altered or corrupt index)"
        if let row = VectorKernels.firstNonFiniteRow(centroids.pointer, rows: centroids.rows, dimension: centroids.columns) {
            throw SimjobError("\(place)/coarse_centroids: row \(row) \(VectorKernels.describeUnusableRow(centroids.row(row), dimension: centroids.columns)) \(altered)")
        }
        if let row = VectorKernels.firstNonFiniteRow(codebooks.pointer, rows: codebooks.rows, dimension: codebooks.columns) {
            throw SimjobError("\(place)/pq_codebooks: row \(row) \(VectorKernels.describeUnusableRow(codebooks.row(row), dimension: codebooks.columns)) \(altered)")
        }
        guard offsets.first == 0 else { throw SimjobError("\(place)/list_offsets: entry 0 is \(offsets.first ?? -1), expected 0 \(altered)") }
        for index in 1..<offsets.count where offsets[index] < offsets[index - 1] || offsets[index] > count {
            throw SimjobError("\(place)/list_offsets: entry \(index) is \(offsets[index]), outside \(offsets[index - 1])...\(count) \(altered)")
        }
        guard offsets.last == count else {
            throw SimjobError("\(place)/list_offsets: the last entry is \(offsets.last ?? -1), expected count = \(count) \(altered)")
        }
        // Ids are the rows of the source, each listed once: a permutation of 0..<count.
        var seen = [Bool](repeating: false, count: count)
        for (position, id) in ids.enumerated() {
            guard id >= 0, Int(id) < count else {
                throw SimjobError("\(place)/ids: entry \(position) is \(id), outside 0..<\(count) \(altered)")
            }
            guard !seen[Int(id)] else { throw SimjobError("\(place)/ids: entry \(position) repeats id \(id) \(altered)") }
            seen[Int(id)] = true
        }
        if nbits < 8 {
            let limit = UInt8(1 << nbits)
            if let position = codes.firstIndex(where: { $0 >= limit }) {
                let m = count > 0 ? codes.count / count : 1
                throw SimjobError("\(place)/codes: row \(position / m), column \(position % m) is \(codes[position]), not below 2^nbits = \(limit) \(altered)")
            }
        }
    }
}

/// Saving and loading an IVF-Flat index in group `index`:
///
///     index/                    attributes: type = "IVFFlat", format_version, metric, dimension,
///                               nlist, count, source
///     index/coarse_centroids    float32 [nlist, d]
///     index/list_offsets        int64   [nlist + 1]
///     index/ids                 int32   [count]      (row ids of the source, by list)
///     index/vectors             float32 [count, d]   (by list; unit length for angular)
extension IVFFlatIndex {
    public static let formatVersion: Int64 = 1

    public func save(to file: HDF5File, group: String = "index") throws {
        try file.createGroup(group)
        try file.setAttribute("type", .string("IVFFlat"), on: group)
        try file.setAttribute("format_version", .int(IVFFlatIndex.formatVersion), on: group)
        try file.setAttribute("metric", .string(metric.rawValue), on: group)
        try file.setAttribute("dimension", .int(Int64(dimension)), on: group)
        try file.setAttribute("nlist", .int(Int64(nlist)), on: group)
        try file.setAttribute("count", .int(Int64(count)), on: group)
        try file.setAttribute("source", .string(source), on: group)
        try file.write("\(group)/coarse_centroids", coarseCentroids.array, shape: [nlist, dimension])
        try file.write("\(group)/list_offsets", listOffsets.map(Int64.init), shape: [nlist + 1])
        try file.write("\(group)/ids", ids, shape: [count])
        try file.write("\(group)/vectors", vectors.array, shape: [count, dimension])
    }

    public static func load(from file: HDF5File, group: String = "index") throws -> IVFFlatIndex {
        let stored = try IndexGroup(file, group, type: "IVFFlat", named: "an IVF-Flat index", formatVersion: formatVersion)
        let place = stored.place, metric = stored.metric
        func dataset(_ name: String, shape: [Int], integer: Bool) throws -> HDF5Dataset { try stored.dataset(name, shape: shape, integer: integer) }
        let d = try stored.integer("dimension"), nlist = try stored.integer("nlist"), count = try stored.integer("count")
        guard (1...65_536).contains(d), (1...16_777_216).contains(nlist), (0...Int(Int32.max)).contains(count) else {
            throw SimjobError("\(place): attributes dimension = \(d), nlist = \(nlist), count = \(count) are out of range (altered or corrupt index)")
        }
        let centroids = FloatMatrix(rows: nlist, columns: d, values: try dataset("coarse_centroids", shape: [nlist, d], integer: false).readAll(as: Float.self))
        let offsets = try dataset("list_offsets", shape: [nlist + 1], integer: true).readAll(as: Int64.self).map(Int.init)
        let wideIDs = try dataset("ids", shape: [count], integer: true).readAll(as: Int64.self)
        if let position = wideIDs.firstIndex(where: { $0 < 0 || $0 >= Int64(count) }) {
            throw SimjobError("\(place)/ids: entry \(position) is \(wideIDs[position]), outside 0..<\(count) (altered or corrupt index)")
        }
        let ids = wideIDs.map { Int32($0) }
        let vectors = FloatMatrix(rows: count, columns: d, values: try dataset("vectors", shape: [count, d], integer: false).readAll(as: Float.self))
        if let row = VectorKernels.firstNonFiniteRow(vectors.pointer, rows: count, dimension: d) {
            throw SimjobError("\(place)/vectors: row \(row) \(VectorKernels.describeUnusableRow(vectors.row(row), dimension: d)) (altered or corrupt index)")
        }
        try IndexValidation.check(place: place, centroids: centroids, codebooks: FloatMatrix(rows: 0, columns: 1), offsets: offsets, count: count,
                                  ids: ids, codes: [], nbits: 8)
        return IVFFlatIndex(metric: metric, coarseCentroids: centroids, listOffsets: offsets, ids: ids, vectors: vectors, source: stored.source)
    }
}

/// An index group being loaded: its type and format version checked, its metric read, and the
/// checked reads of its attributes and datasets every layout uses.
struct IndexGroup {
    let file: HDF5File
    let group: String
    let place: String
    let metric: Metric

    init(_ file: HDF5File, _ group: String, type: String, named: String, formatVersion: Int64) throws {
        self.file = file
        self.group = group
        place = "\(file.path):\(group)"
        guard file.exists(group), !file.isDataset(group) else { throw SimjobError("\(file.path): no index group '\(group)' (written by simjob train)") }
        guard try file.attribute("type", of: group)?.stringValue == type else { throw SimjobError("\(place): not \(named)") }
        guard let attribute = try file.attribute("format_version", of: group) else { throw SimjobError("\(place): missing attribute 'format_version'") }
        guard let version = attribute.intValue else {
            throw SimjobError("\(place): attribute 'format_version' is \(attribute), expected one whole number (altered or corrupt index)")
        }
        guard version <= formatVersion else { throw SimjobError("\(place): format version \(version) is newer than this simjob reads (\(formatVersion))") }
        guard let metricName = try file.attribute("metric", of: group)?.stringValue, let metric = Metric(name: metricName) else {
            throw SimjobError("\(place): missing or unknown metric")
        }
        self.metric = metric
    }

    /// A whole-number attribute.
    func integer(_ name: String) throws -> Int {
        guard let attribute = try file.attribute(name, of: group) else { throw SimjobError("\(place): missing attribute '\(name)'") }
        guard let value = attribute.intValue else {
            throw SimjobError("\(place): attribute '\(name)' is \(attribute), expected one whole number (altered or corrupt index)")
        }
        return Int(value)
    }

    /// The `source` attribute (empty when absent).
    var source: String { (try? file.attribute("source", of: group)?.stringValue) ?? "" }

    /// A dataset of the group with exactly `shape`, of integers or floats.
    /// Dataset `name`'s float values, every one finite (else the entry is named).
    func finiteFloats(_ name: String, shape: [Int]) throws -> [Float] {
        let data = try dataset(name, shape: shape, integer: false)
        let values = try data.readAll(as: Float.self)
        if let position = values.firstIndex(where: { !$0.isFinite }) {
            throw SimjobError("\(data.location): entry \(position) is \(values[position]) (altered or corrupt index)")
        }
        return values
    }

    func dataset(_ name: String, shape: [Int], integer: Bool) throws -> HDF5Dataset {
        let data = try file.dataset("\(group)/\(name)")
        guard data.shape == shape else { throw SimjobError("\(data.location): shape \(data.shapeDescription), expected \(shape)") }
        guard data.elementType.isNumeric, data.elementType.isInteger == integer, data.elementType != .bool else {
            throw SimjobError("\(data.location): element type \(data.elementType), expected \(integer ? "integers" : "floats") (altered or corrupt index)")
        }
        return data
    }
}

/// Any index simjob saves, loaded by its `type` attribute.
public enum IndexFile {
    public static func save(_ index: any SearchableIndex, to file: HDF5File, group: String = "index") throws {
        switch index {
        case let pq as IVFPQIndex: try pq.save(to: file, group: group)
        case let flat as IVFFlatIndex: try flat.save(to: file, group: group)
        case let hnsw as HNSWIndex: try hnsw.save(to: file, group: group)
        case let lsh as LSHIndex: try lsh.save(to: file, group: group)
        case let forest as RPForestIndex: try forest.save(to: file, group: group)
        default: preconditionFailure("an index type without a file layout")
        }
    }

    public static func load(_ file: HDF5File, group: String = "index") throws -> any SearchableIndex {
        guard file.exists(group), !file.isDataset(group) else { throw SimjobError("\(file.path): no index group '\(group)' (written by simjob train)") }
        switch try file.attribute("type", of: group)?.stringValue {
        case "IVFPQ": return try IVFPQIndex.load(from: file, group: group)
        case "IVFFlat": return try IVFFlatIndex.load(from: file, group: group)
        case "HNSW": return try HNSWIndex.load(from: file, group: group)
        case "LSH": return try LSHIndex.load(from: file, group: group)
        case "RPTrees": return try RPForestIndex.load(from: file, group: group)
        case let other: throw SimjobError("\(file.path):\(group): index type '\(other ?? "none")' is not one simjob reads (IVFPQ, IVFFlat, HNSW, LSH, RPTrees)")
        }
    }
}

/// Saving and loading an HNSW index in group `index`:
///
///     index/                    attributes: type = "HNSW", format_version, metric, dimension,
///                               count, m, max_level, entry_point, source
///     index/vectors             float32 [count, d]   (unit length for angular)
///     index/levels              int32   [count]      (each node's top level)
///     index/base_links          int32   [count, 2m]  (base layer, -1 after the last)
///     index/layer_<l>/nodes     int32   [n_l]        (l = 1 ... max_level: nodes of level >= l)
///     index/layer_<l>/links     int32   [n_l, m]
extension HNSWIndex {
    public static let formatVersion: Int64 = 1

    public func save(to file: HDF5File, group: String = "index") throws {
        try file.createGroup(group)
        let attributes: [(String, AttributeValue)] = [
            ("type", .string("HNSW")), ("format_version", .int(HNSWIndex.formatVersion)), ("metric", .string(metric.rawValue)),
            ("dimension", .int(Int64(dimension))), ("count", .int(Int64(count))), ("m", .int(Int64(m))), ("max_level", .int(Int64(maxLevel))),
            ("entry_point", .int(Int64(entryPoint))), ("source", .string(source)),
        ]
        for (name, value) in attributes { try file.setAttribute(name, value, on: group) }
        try file.write("\(group)/vectors", vectors.array, shape: [count, dimension])
        try file.write("\(group)/levels", levels, shape: [count])
        try file.write("\(group)/base_links", base, shape: [count, 2 * m])
        for (index, layer) in upper.enumerated() {
            try file.write("\(group)/layer_\(index + 1)/nodes", layer.nodes, shape: [layer.nodes.count])
            try file.write("\(group)/layer_\(index + 1)/links", layer.links, shape: [layer.nodes.count, m])
        }
    }

    public static func load(from file: HDF5File, group: String = "index") throws -> HNSWIndex {
        let stored = try IndexGroup(file, group, type: "HNSW", named: "an HNSW index", formatVersion: formatVersion)
        let place = stored.place, metric = stored.metric
        let altered = "(altered or corrupt index)"
        func integer(_ name: String) throws -> Int { try stored.integer(name) }
        let d = try integer("dimension"), count = try integer("count"), m = try integer("m"), maxLevel = try integer("max_level"), entry = try integer("entry_point")
        guard (1...65_536).contains(d), (2...Int(Int32.max)).contains(count), (2...4096).contains(m), (0...30).contains(maxLevel), (0..<count).contains(entry) else {
            throw SimjobError("\(place): attributes dimension = \(d), count = \(count), m = \(m), max_level = \(maxLevel), entry_point = \(entry) are out of range \(altered)")
        }
        func ints(_ name: String, shape: [Int]) throws -> [Int32] {
            let data = try stored.dataset(name, shape: shape, integer: true)
            let wide = try data.readAll(as: Int64.self)
            if let position = wide.firstIndex(where: { $0 < -1 || $0 >= Int64(count) }) {
                throw SimjobError("\(data.location): entry \(position) is \(wide[position]), outside -1..<\(count) \(altered)")
            }
            return wide.map { Int32($0) }
        }
        let vectors = FloatMatrix(rows: count, columns: d, values: try stored.dataset("vectors", shape: [count, d], integer: false).readAll(as: Float.self))
        if let row = VectorKernels.firstNonFiniteRow(vectors.pointer, rows: count, dimension: d) {
            throw SimjobError("\(place)/vectors: row \(row) \(VectorKernels.describeUnusableRow(vectors.row(row), dimension: d)) \(altered)")
        }
        let levels = try ints("levels", shape: [count])
        guard levels.allSatisfy({ $0 >= 0 && Int($0) <= maxLevel }), levels[entry] == maxLevel else {
            throw SimjobError("\(place)/levels: levels must lie in 0...\(maxLevel) with the entry point at the top \(altered)")
        }
        let base = try ints("base_links", shape: [count, 2 * m])
        var upper: [(nodes: [Int32], links: [Int32])] = []
        for level in stride(from: 1, through: maxLevel, by: 1) {
            let expected = levels.enumerated().filter { $0.element >= level }.map { Int32($0.offset) }
            let nodes = try ints("layer_\(level)/nodes", shape: [expected.count])
            guard nodes == expected else { throw SimjobError("\(place)/layer_\(level)/nodes: not the nodes of level >= \(level) \(altered)") }
            let links = try ints("layer_\(level)/links", shape: [nodes.count, m])
            let members = Set(nodes)
            if let position = links.firstIndex(where: { $0 >= 0 && !members.contains($0) }) {
                throw SimjobError("\(place)/layer_\(level)/links: entry \(position) links node \(links[position]), which is not on layer \(level) \(altered)")
            }
            upper.append((nodes, links))
        }
        return HNSWIndex(metric: metric, m: m, vectors: vectors, levels: levels, base: base, upper: upper, entryPoint: entry,
                         source: stored.source)
    }
}

/// Saving and loading an LSH index in group `index`:
///
///     index/                    attributes: type = "LSH", format_version, metric, dimension,
///                               count, tables, bits, source
///     index/projections         float32 [tables * bits, d]   (table t: rows t * bits ..< (t + 1) * bits)
///     index/thresholds          float32 [tables * bits]
///     index/codes               int32   [tables, count]      (row i's code in table t, < 2^bits)
///     index/vectors             float32 [count, d]           (unit length for angular)
///
/// The buckets are not stored: loading sorts each table's codes again (the codes, not the
/// vectors, are what the index was built with, so a reloaded index probes the same buckets).
extension LSHIndex {
    public static let formatVersion: Int64 = 1

    public func save(to file: HDF5File, group: String = "index") throws {
        try file.createGroup(group)
        let attributes: [(String, AttributeValue)] = [
            ("type", .string("LSH")), ("format_version", .int(LSHIndex.formatVersion)), ("metric", .string(metric.rawValue)),
            ("dimension", .int(Int64(dimension))), ("count", .int(Int64(count))), ("tables", .int(Int64(tables))),
            ("bits", .int(Int64(bits))), ("source", .string(source)),
        ]
        for (name, value) in attributes { try file.setAttribute(name, value, on: group) }
        try file.write("\(group)/projections", projections.array, shape: [tables * bits, dimension])
        try file.write("\(group)/thresholds", thresholds, shape: [tables * bits])
        try file.write("\(group)/codes", codes.map { Int32(bitPattern: $0) }, shape: [tables, count])
        try file.write("\(group)/vectors", vectors.array, shape: [count, dimension])
    }

    public static func load(from file: HDF5File, group: String = "index") throws -> LSHIndex {
        let stored = try IndexGroup(file, group, type: "LSH", named: "an LSH index", formatVersion: formatVersion)
        let place = stored.place, altered = "(altered or corrupt index)"
        let d = try stored.integer("dimension"), count = try stored.integer("count")
        let tables = try stored.integer("tables"), bits = try stored.integer("bits")
        guard (1...65_536).contains(d), (1...Int(Int32.max)).contains(count), (1...1024).contains(tables), (1...maximumBits).contains(bits) else {
            throw SimjobError("\(place): attributes dimension = \(d), count = \(count), tables = \(tables), bits = \(bits) are out of range \(altered)")
        }
        func floats(_ name: String, shape: [Int]) throws -> [Float] { try stored.finiteFloats(name, shape: shape) }
        let projections = FloatMatrix(rows: tables * bits, columns: d, values: try floats("projections", shape: [tables * bits, d]))
        let thresholds = try floats("thresholds", shape: [tables * bits])
        let codeData = try stored.dataset("codes", shape: [tables, count], integer: true)
        let wide = try codeData.readAll(as: Int64.self)
        if let position = wide.firstIndex(where: { $0 < 0 || $0 >= Int64(1) << bits }) {
            throw SimjobError("\(codeData.location): entry \(position) is \(wide[position]), outside 0..<2^\(bits) \(altered)")
        }
        let vectors = FloatMatrix(rows: count, columns: d, values: try floats("vectors", shape: [count, d]))
        return LSHIndex(metric: stored.metric, tables: tables, bits: bits, projections: projections, thresholds: thresholds,
                        codes: wide.map { UInt32($0) }, vectors: vectors, source: stored.source)
    }
}

/// Saving and loading a random-projection forest in group `index`:
///
///     index/                    attributes: type = "RPTrees", format_version, metric, dimension,
///                               count, trees, leaf_size, splits, leaves, source
///     index/normals             float32 [splits, d]       (split s's hyperplane: normal . x + offset)
///     index/offsets             float32 [splits]
///     index/children            int32   [splits, 2]       (negative side, positive side: c >= 0 is
///                                                          split c, later than its parent; c < 0
///                                                          is leaf -c - 1)
///     index/roots               int32   [trees]           (encoded as children)
///     index/leaf_starts         int32   [leaves + 1]      (leaf l's rows: leaf_rows[starts[l] ..< starts[l + 1]])
///     index/leaf_rows           int32   [trees * count]   (every tree holds every row once)
///     index/vectors             float32 [count, d]        (unit length for angular)
///
/// Loading checks the structure as well as the shapes (children point forward or at a leaf,
/// starts ascend, rows are in range), so an altered file is refused, not searched in a loop.
extension RPForestIndex {
    public static let formatVersion: Int64 = 1

    public func save(to file: HDF5File, group: String = "index") throws {
        try file.createGroup(group)
        let attributes: [(String, AttributeValue)] = [
            ("type", .string("RPTrees")), ("format_version", .int(RPForestIndex.formatVersion)), ("metric", .string(metric.rawValue)),
            ("dimension", .int(Int64(dimension))), ("count", .int(Int64(count))), ("trees", .int(Int64(trees))),
            ("leaf_size", .int(Int64(leafSize))), ("splits", .int(Int64(splits))), ("leaves", .int(Int64(leafStarts.count - 1))),
            ("source", .string(source)),
        ]
        for (name, value) in attributes { try file.setAttribute(name, value, on: group) }
        try file.write("\(group)/normals", normals.array, shape: [splits, dimension])
        try file.write("\(group)/offsets", offsets, shape: [splits])
        try file.write("\(group)/children", children, shape: [splits, 2])
        try file.write("\(group)/roots", roots, shape: [trees])
        try file.write("\(group)/leaf_starts", leafStarts, shape: [leafStarts.count])
        try file.write("\(group)/leaf_rows", leafRows, shape: [leafRows.count])
        try file.write("\(group)/vectors", vectors.array, shape: [count, dimension])
    }

    public static func load(from file: HDF5File, group: String = "index") throws -> RPForestIndex {
        let stored = try IndexGroup(file, group, type: "RPTrees", named: "a random-projection forest", formatVersion: formatVersion)
        let place = stored.place, altered = "(altered or corrupt index)"
        let d = try stored.integer("dimension"), count = try stored.integer("count")
        let trees = try stored.integer("trees"), leafSize = try stored.integer("leaf_size")
        let splits = try stored.integer("splits"), leaves = try stored.integer("leaves")
        guard (1...65_536).contains(d), (1...Int(Int32.max)).contains(count), (1...4096).contains(trees), leafSize >= 1,
              (0...Int(Int32.max)).contains(splits), (trees...Int(Int32.max)).contains(leaves), trees * count <= Int(Int32.max) else {
            throw SimjobError("\(place): attributes dimension = \(d), count = \(count), trees = \(trees), leaf_size = \(leafSize), splits = \(splits), leaves = \(leaves) are out of range \(altered)")
        }
        func floats(_ name: String, shape: [Int]) throws -> [Float] { try stored.finiteFloats(name, shape: shape) }
        func integers(_ name: String, shape: [Int], valid: (Int, Int64) -> Bool, what: String) throws -> [Int32] {
            let data = try stored.dataset(name, shape: shape, integer: true)
            let values = try data.readAll(as: Int64.self)
            for (position, value) in values.enumerated() where !valid(position, value) {
                throw SimjobError("\(data.location): entry \(position) is \(value), \(what) \(altered)")
            }
            return values.map { Int32($0) }
        }
        let normals = FloatMatrix(rows: splits, columns: d, values: splits > 0 ? try floats("normals", shape: [splits, d]) : [])
        let offsets = splits > 0 ? try floats("offsets", shape: [splits]) : []
        let children = splits > 0
            ? try integers("children", shape: [splits, 2], valid: { position, value in
                value >= 0 ? value > Int64(position / 2) && value < Int64(splits) : value >= -Int64(leaves)
            }, what: "not a later split or a leaf")
            : []
        let roots = try integers("roots", shape: [trees], valid: { _, value in
            value >= 0 ? value < Int64(splits) : value >= -Int64(leaves)
        }, what: "not a split or a leaf")
        let leafStarts = try integers("leaf_starts", shape: [leaves + 1], valid: { _, value in
            (0...Int64(trees * count)).contains(value)
        }, what: "outside the leaf rows")
        guard leafStarts.first == 0, leafStarts.last == Int32(trees * count), zip(leafStarts.dropFirst(), leafStarts).allSatisfy({ $0 >= $1 }) else {
            throw SimjobError("\(place)/leaf_starts: not ascending from 0 to \(trees * count) \(altered)")
        }
        let leafRows = try integers("leaf_rows", shape: [trees * count], valid: { _, value in (0..<Int64(count)).contains(value) }, what: "not a row")
        let vectors = FloatMatrix(rows: count, columns: d, values: try floats("vectors", shape: [count, d]))
        return RPForestIndex(metric: stored.metric, trees: trees, leafSize: leafSize, normals: normals, offsets: offsets, children: children,
                             roots: roots, leafStarts: leafStarts, leafRows: leafRows, vectors: vectors, source: stored.source)
    }
}
