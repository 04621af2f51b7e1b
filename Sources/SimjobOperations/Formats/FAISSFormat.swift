import Foundation
import SimjobAlgorithms
import SimjobKernels

/// FAISS's own index serialization (`faiss/impl/index_write.cpp`, `index_read.cpp`), for the
/// index types simjob and FAISS share, so `faiss.read_index(FILE)` loads an exported index and
/// answers as `simjob search` does, and a FAISS-built index can be imported and evaluated.
///
/// The layout is the classes' fields in order, little-endian, with a four-character code naming
/// each class. What simjob writes and reads:
///
///     index header   int32 d, int64 ntotal, int64 2^20, int64 2^20, bool is_trained, int32 metric
///                    (0 inner product, 1 L2)
///     "IxF2"/"IxFI"  flat quantizer: header, then its centroids as WRITEXBVECTOR writes them
///                    (size_t: the byte count / 4, then the bytes)
///     "IwPQ"         IVF-PQ: header, size_t nlist, size_t nprobe, the quantizer, direct map
///                    (char 0, empty int64 vector), bool by_residual, size_t code_size,
///                    PQ (size_t d, size_t M, size_t nbits, float vector M * 2^nbits * d/M),
///                    inverted lists
///     "IwFl"         IVF-Flat: the same IVF header (no by_residual or PQ), then inverted lists
///                    whose codes are the float vectors (code_size 4 d)
///     "IHNf"         HNSW over flat storage (see `faissHNSW`)
///     "ilar"         array inverted lists: size_t nlist, size_t code_size, "full" and a size_t
///                    vector of list sizes (or "sprs" and (list, size) pairs), then per non-empty
///                    list its codes and its int64 ids
///     "IxPT"         a pre-transform: header, int32 chain length, the transforms, the index;
///                    "VNrm" (L2 normalization: float norm 2, int32 d_in, int32 d_out, bool
///                    is_trained) wraps angular indexes, so FAISS normalizes queries itself
///
/// Vectors are `size_t count` then the elements. PQ codes of fewer than 8 bits are packed
/// least-significant bit first, as FAISS's `PQEncoderGeneric` packs them.
public enum FAISSFormat {
    static let l2: Int32 = 1
    static let innerProduct: Int32 = 0

    // MARK: writing

    /// The bytes of an IVF-PQ index in FAISS's format. Angular indexes are wrapped in an
    /// `IndexPreTransform` with an L2 normalization, so FAISS's distances are `||q - x||^2`
    /// of unit vectors, `2 (1 - cos)`; euclidean gives squared L2 and ip the dot product.
    public static func ivfpq(_ index: IVFPQIndex) -> Data {
        var out = Writer()
        _ = ivfHeader(&out, code: "IwPQ", metric: index.metric, dimension: index.dimension, count: index.count, centroids: index.coarseCentroids)
        out.bool(true)  // by_residual
        let pq = index.pq
        let codeSize = (pq.m * pq.nbits + 7) / 8
        out.size(codeSize)
        out.size(index.dimension)
        out.size(pq.m)
        out.size(pq.nbits)
        out.size(pq.m * pq.ksub * pq.dsub)
        out.floats(pq.codebooks.pointer, count: pq.m * pq.ksub * pq.dsub)
        arrayLists(&out, offsets: index.listOffsets, ids: index.ids, codeSize: codeSize) { out, entry in
            out.bytes(pack(Array(index.codes[(entry * pq.m)..<((entry + 1) * pq.m)]), nbits: pq.nbits))
        }
        return out.data
    }

    /// The bytes of an IVF-Flat index in FAISS's format (`IndexIVFFlat`, codes = the float
    /// vectors), angular behind an L2 normalization as for IVF-PQ.
    public static func ivfflat(_ index: IVFFlatIndex) -> Data {
        var out = Writer()
        _ = ivfHeader(&out, code: "IwFl", metric: index.metric, dimension: index.dimension, count: index.count, centroids: index.coarseCentroids)
        arrayLists(&out, offsets: index.listOffsets, ids: index.ids, codeSize: index.dimension * 4) { out, entry in
            out.floats(index.vectors.row(entry), count: index.dimension)
        }
        return out.data
    }

    /// The normalization wrapper for angular, the index type's code, its header, nlist, nprobe,
    /// the flat quantizer and an empty direct map. Returns FAISS's metric type.
    static func ivfHeader(_ out: inout Writer, code: String, metric simjobMetric: Metric, dimension: Int, count: Int, centroids: FloatMatrix) -> Int32 {
        let metric = simjobMetric == .ip ? innerProduct : l2
        if simjobMetric == .angular { normalizationWrapper(&out, dimension: dimension, count: count) }
        out.fourcc(code)
        out.header(d: dimension, count: count, metric: metric)
        out.size(centroids.rows)
        out.size(1)  // nprobe
        flatIndex(&out, centroids.pointer, rows: centroids.rows, dimension: dimension, metric: metric)
        out.byte(0)  // direct map: none
        out.size(0)
        return metric
    }

    /// An `IndexFlat` (`IxF2` for L2, `IxFI` for inner product) of `rows` vectors: the header,
    /// then the floats as WRITEXBVECTOR writes them (the byte count / 4, then the bytes).
    static func flatIndex(_ out: inout Writer, _ vectors: UnsafePointer<Float>, rows: Int, dimension: Int, metric: Int32) {
        out.fourcc(metric == l2 ? "IxF2" : "IxFI")
        out.header(d: dimension, count: rows, metric: metric)
        out.size(rows * dimension)
        out.floats(vectors, count: rows * dimension)
    }

    /// The start of an `IndexPreTransform` holding one L2 normalization (`VNrm`, norm 2); the
    /// wrapped index follows.
    static func normalizationWrapper(_ out: inout Writer, dimension: Int, count: Int) {
        out.fourcc("IxPT")
        out.header(d: dimension, count: count, metric: l2)
        out.int32(1)
        out.fourcc("VNrm")
        out.float(2)
        out.int32(Int32(dimension))
        out.int32(Int32(dimension))
        out.bool(true)
    }

    /// Array inverted lists ("ilar", "full"): the sizes, then per non-empty list its codes
    /// (written by `code` per entry) and its int64 ids.
    static func arrayLists(_ out: inout Writer, offsets: [Int], ids: [Int32], codeSize: Int, code: (inout Writer, Int) -> Void) {
        let nlist = offsets.count - 1
        out.fourcc("ilar")
        out.size(nlist)
        out.size(codeSize)
        out.fourcc("full")
        out.size(nlist)
        for list in 0..<nlist { out.size(offsets[list + 1] - offsets[list]) }
        for list in 0..<nlist {
            let range = offsets[list]..<offsets[list + 1]
            guard !range.isEmpty else { continue }
            for entry in range { code(&out, entry) }
            for entry in range { out.int64(Int64(ids[entry])) }
        }
    }

    /// `codes` (one byte per sub-quantizer) packed into `ceil(m nbits / 8)` bytes, least
    /// significant bit first.
    static func pack(_ codes: [UInt8], nbits: Int) -> [UInt8] {
        if nbits == 8 { return codes }
        var packed = [UInt8](repeating: 0, count: (codes.count * nbits + 7) / 8)
        var bit = 0
        for code in codes {
            for b in 0..<nbits where code & (1 << b) != 0 { packed[(bit + b) / 8] |= 1 << ((bit + b) % 8) }
            bit += nbits
        }
        return packed
    }

    static func unpack(_ packed: ArraySlice<UInt8>, m: Int, nbits: Int) -> [UInt8] {
        if nbits == 8 { return Array(packed) }
        let base = packed.startIndex
        var codes = [UInt8](repeating: 0, count: m)
        for s in 0..<m {
            var value: UInt8 = 0
            for b in 0..<nbits {
                let bit = s * nbits + b
                if packed[base + bit / 8] & (1 << (bit % 8)) != 0 { value |= 1 << b }
            }
            codes[s] = value
        }
        return codes
    }

    struct Writer {
        var data = Data()
        mutating func fourcc(_ code: String) { data.append(contentsOf: Array(code.utf8)) }
        mutating func int32(_ value: Int32) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        mutating func int64(_ value: Int64) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
        mutating func size(_ value: Int) { int64(Int64(value)) }
        mutating func float(_ value: Float) { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        mutating func bool(_ value: Bool) { data.append(value ? 1 : 0) }
        mutating func byte(_ value: UInt8) { data.append(value) }
        mutating func bytes(_ values: [UInt8]) { data.append(contentsOf: values) }
        mutating func floats(_ pointer: UnsafePointer<Float>, count: Int) {
            data.append(UnsafeBufferPointer(start: pointer, count: count))
        }
        mutating func header(d: Int, count: Int, metric: Int32) {
            int32(Int32(d))
            int64(Int64(count))
            int64(1 << 20)
            int64(1 << 20)
            bool(true)
            int32(metric)
        }
    }

    /// The bytes of an HNSW index as FAISS's `IndexHNSWFlat` (`IHNf`: header, the HNSW graph,
    /// then the vectors as an `IxF2`/`IxFI` flat storage), angular behind an L2 normalization.
    /// The graph (`write_HNSW`): double vector assign_probas, int vector
    /// cum_nneighbor_per_level (0, 2m, 3m, ...), int vector levels (a node's level + 1), size_t
    /// vector offsets (n + 1), int32 vector neighbors (per node its levels' slots, base first,
    /// -1 when empty), int32 entry_point, int max_level, int efConstruction, int efSearch, int
    /// upper_beam.
    public static func faissHNSW(_ index: HNSWIndex) -> Data {
        var out = Writer()
        let d = index.dimension, n = index.count, m = index.m
        let metric = index.metric == .ip ? innerProduct : l2
        if index.metric == .angular { normalizationWrapper(&out, dimension: d, count: n) }
        out.fourcc("IHNf")
        out.header(d: d, count: n, metric: metric)
        // FAISS's default level probabilities for m (set_default_probas), long enough for every level here.
        let levelMult = 1 / log(Double(m))
        var probas: [Double] = [], cumulative: [Int32] = [0]
        var level = 0
        while true {
            let proba = exp(-Double(level) / levelMult) * (1 - exp(-1 / levelMult))
            if proba < 1e-9 && level > index.maxLevel { break }
            probas.append(proba)
            cumulative.append(cumulative.last! + Int32(level == 0 ? 2 * m : m))
            level += 1
        }
        out.size(probas.count)
        for value in probas { withUnsafeBytes(of: value.bitPattern.littleEndian) { out.data.append(contentsOf: $0) } }
        out.size(cumulative.count)
        for value in cumulative { out.int32(value) }
        out.size(n)
        for node in 0..<n { out.int32(index.levels[node] + 1) }
        var offsets = [0]
        for node in 0..<n { offsets.append(offsets.last! + Int(cumulative[Int(index.levels[node]) + 1])) }
        out.size(n + 1)
        for value in offsets { out.size(value) }
        out.size(offsets.last!)
        for node in 0..<n {
            for slot in 0..<(2 * m) { out.int32(index.base[node * 2 * m + slot]) }
            for l in stride(from: 1, through: Int(index.levels[node]), by: 1) {
                let at = Int(index.positions[l - 1][node])
                for slot in 0..<m { out.int32(index.upper[l - 1].links[at * m + slot]) }
            }
        }
        out.int32(Int32(index.entryPoint))
        out.int32(Int32(index.maxLevel))
        out.int32(40)  // efConstruction (unused by search)
        out.int32(16)  // efSearch: set it with faiss.ParameterSpace or index.hnsw.efSearch
        out.int32(1)   // upper_beam (deprecated)
        flatIndex(&out, index.vectors.pointer, rows: n, dimension: d, metric: metric)
        return out.data
    }

    // MARK: reading

    /// An IVF-PQ or IVF-Flat index read from a FAISS file (`IwPQ` or `IwFl`, optionally wrapped
    /// in an L2 normalization pre-transform, which makes it angular). Every field is checked; a
    /// file FAISS could not have written for these types, a truncated one, or one whose ids are
    /// not the rows `0..<ntotal` each once is refused in one line naming the file and the field.
    /// `source` is recorded as the index's source (`FILE:DATASET` of its vectors, or empty).
    public static func readIndex(_ data: Data, path: String, source: String = "") throws -> any SearchableIndex {
        var input = Reader(data: [UInt8](data), path: path)
        var code = try input.fourcc("index type")
        var angular = false
        if code == "IxPT" {
            _ = try input.header("IndexPreTransform")
            let chain = try input.int32("IndexPreTransform chain length")
            guard chain == 1, try input.fourcc("transform") == "VNrm" else {
                throw input.failure("a pre-transform other than one L2 normalization (VNrm) is not an index simjob reads")
            }
            let norm = try input.float("VNrm norm")
            guard norm == 2 else { throw input.failure("VNrm norm is \(norm), expected 2 (L2 normalization)") }
            _ = try input.int32("VNrm d_in"); _ = try input.int32("VNrm d_out"); _ = try input.bool("VNrm is_trained")
            angular = true
            code = try input.fourcc("index type")
        }
        guard code == "IwPQ" || code == "IwFl" else {
            throw input.failure("index type '\(code)' is not one simjob imports (IVF-PQ 'IwPQ' or IVF-Flat 'IwFl', optionally behind an L2 normalization)")
        }
        let flat = code == "IwFl"
        let header = try input.header("IndexIVF")
        let d = header.d, ntotal = header.count
        guard header.metric == l2 || header.metric == innerProduct else { throw input.failure("metric type \(header.metric) is neither L2 nor inner product") }
        if angular && header.metric != l2 { throw input.failure("a normalized index with inner product is not one simjob reads; use metric L2") }
        let metric: Metric = angular ? .angular : header.metric == l2 ? .euclidean : .ip
        let nlist = try input.size("nlist", limit: 16_777_216)
        guard nlist >= 1 else { throw input.failure("nlist is 0") }
        _ = try input.size("nprobe", limit: Int.max)
        let quantizerCode = try input.fourcc("quantizer type")
        guard quantizerCode == (header.metric == l2 ? "IxF2" : "IxFI") else {
            throw input.failure("coarse quantizer '\(quantizerCode)' is not the flat \(header.metric == l2 ? "L2 (IxF2)" : "inner-product (IxFI)") one simjob reads")
        }
        let quantizer = try input.header("quantizer")
        guard quantizer.d == d, quantizer.count == nlist else {
            throw input.failure("quantizer holds \(quantizer.count) centroids of dimension \(quantizer.d), expected \(nlist) of dimension \(d)")
        }
        let floatsOver4 = try input.size("quantizer codes", limit: Int.max)
        guard floatsOver4 == nlist * d else { throw input.failure("quantizer codes hold \(floatsOver4 * 4) bytes, expected \(nlist * d * 4)") }
        let centroids = FloatMatrix(rows: nlist, columns: d, values: try input.floats(nlist * d, "quantizer centroids"))
        let directMap = try input.byte("direct map type")
        let directCount = try input.size("direct map", limit: Int.max)
        guard directCount <= ntotal else { throw input.failure("direct map holds \(directCount) entries for \(ntotal) vectors") }
        try input.skip(directCount * 8, "direct map")
        if directMap == 2 { let pairs = try input.size("direct map hashtable", limit: ntotal); try input.skip(pairs * 16, "direct map hashtable") }
        if flat {
            let lists = try readLists(&input, nlist: nlist, codeSize: d * 4, ntotal: ntotal)
            let vectors = FloatMatrix(rows: ntotal, columns: d)
            lists.codes.withUnsafeBytes { raw in
                for index in 0..<(ntotal * d) {
                    vectors.pointer[index] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)))
                }
            }
            guard input.offset == input.data.count else { throw input.failure("\(input.data.count - input.offset) bytes follow the index") }
            if let row = VectorKernels.firstNonFiniteRow(vectors.pointer, rows: ntotal, dimension: d) {
                throw input.failure("stored vector \(row) \(VectorKernels.describeUnusableRow(vectors.row(row), dimension: d))")
            }
            try IndexValidation.check(place: "\(path): FAISS index", centroids: centroids, codebooks: FloatMatrix(rows: 0, columns: 1), offsets: lists.offsets,
                                      count: ntotal, ids: lists.ids, codes: [], nbits: 8)
            return IVFFlatIndex(metric: metric, coarseCentroids: centroids, listOffsets: lists.offsets, ids: lists.ids, vectors: vectors, source: source)
        }
        guard try input.bool("by_residual") else { throw input.failure("by_residual is false; simjob's IVF-PQ encodes residuals") }
        let codeSize = try input.size("code_size", limit: 65_536)
        let pqD = try input.size("pq.d", limit: 65_536), m = try input.size("pq.M", limit: 65_536), nbits = try input.size("pq.nbits", limit: 64)
        guard pqD == d else { throw input.failure("pq.d = \(pqD) differs from the index's dimension \(d)") }
        do { try ProductQuantizer.validate(dimension: d, m: m, nbits: nbits) } catch let error as SimjobError { throw input.failure(error.message) }
        guard codeSize == (m * nbits + 7) / 8 else { throw input.failure("code_size = \(codeSize), expected \((m * nbits + 7) / 8) for M = \(m), nbits = \(nbits)") }
        let ksub = 1 << nbits
        let bookCount = try input.size("pq centroids", limit: Int.max)
        guard bookCount == m * ksub * (d / m) else { throw input.failure("pq centroids hold \(bookCount) floats, expected \(m * ksub * (d / m))") }
        let codebooks = FloatMatrix(rows: m * ksub, columns: d / m, values: try input.floats(bookCount, "pq centroids"))
        let lists = try readLists(&input, nlist: nlist, codeSize: codeSize, ntotal: ntotal)
        var codes = [UInt8]()
        codes.reserveCapacity(ntotal * m)
        for entry in 0..<ntotal {
            codes.append(contentsOf: unpack(lists.codes[(entry * codeSize)..<((entry + 1) * codeSize)], m: m, nbits: nbits))
        }
        let offsets = lists.offsets, ids = lists.ids
        guard input.offset == input.data.count else { throw input.failure("\(input.data.count - input.offset) bytes follow the index") }
        let place = "\(path): FAISS index"
        try IndexValidation.check(place: place, centroids: centroids, codebooks: codebooks, offsets: offsets, count: ntotal, ids: ids, codes: codes, nbits: nbits)
        let pq = ProductQuantizer(dimension: d, m: m, nbits: nbits, codebooks: codebooks)
        return IVFPQIndex(metric: metric, pq: pq, coarseCentroids: centroids, listOffsets: offsets, ids: ids, codes: codes, source: source)
    }

    /// Array inverted lists: offsets by list, ids and codes (bytes, `codeSize` per entry) in
    /// list order.
    static func readLists(_ input: inout Reader, nlist: Int, codeSize: Int, ntotal: Int) throws -> (offsets: [Int], ids: [Int32], codes: [UInt8]) {
        guard try input.fourcc("inverted lists type") == "ilar" else { throw input.failure("inverted lists other than array lists ('ilar') are not read") }
        guard try input.size("invlists nlist", limit: Int.max) == nlist, try input.size("invlists code_size", limit: Int.max) == codeSize else {
            throw input.failure("inverted lists' nlist or code_size differ from the index's")
        }
        var sizes = [Int](repeating: 0, count: nlist)
        switch try input.fourcc("list type") {
        case "full":
            guard try input.size("list sizes", limit: Int.max) == nlist else { throw input.failure("list sizes do not number nlist = \(nlist)") }
            for list in 0..<nlist { sizes[list] = try input.size("list size", limit: ntotal) }
        case "sprs":
            let pairs = try input.size("sparse list sizes", limit: 2 * nlist)
            guard pairs % 2 == 0 else { throw input.failure("sparse list sizes hold an odd count") }
            for _ in 0..<(pairs / 2) {
                let list = try input.size("sparse list", limit: nlist - 1)
                sizes[list] = try input.size("list size", limit: ntotal)
            }
        case let other: throw input.failure("list type '\(other)' is neither 'full' nor 'sprs'")
        }
        guard sizes.reduce(0, +) == ntotal else { throw input.failure("lists hold \(sizes.reduce(0, +)) entries but ntotal is \(ntotal)") }
        guard ntotal <= Int(Int32.max) else { throw input.failure("\(ntotal) vectors are more than simjob's index holds") }
        var offsets = [0]
        var ids = [Int32](), codes = [UInt8]()
        ids.reserveCapacity(ntotal)
        codes.reserveCapacity(ntotal * codeSize)
        for list in 0..<nlist {
            let count = sizes[list]
            if count > 0 {
                codes.append(contentsOf: try input.bytes(count * codeSize, "list \(list) codes"))
                for _ in 0..<count {
                    let id = try input.int64("list \(list) ids")
                    guard id >= 0, id < Int64(ntotal) else {
                        throw input.failure("list \(list) holds id \(id); simjob's indexes hold the rows 0..<\(ntotal) of their set (add vectors without custom ids)")
                    }
                    ids.append(Int32(id))
                }
            }
            offsets.append(ids.count)
        }
        return (offsets, ids, codes)
    }

    struct Reader {
        let data: [UInt8]
        let path: String
        var offset = 0

        func failure(_ message: String) -> SimjobError { SimjobError("\(path): FAISS index at byte \(offset): \(message)") }

        mutating func bytes(_ count: Int, _ field: String) throws -> ArraySlice<UInt8> {
            guard count >= 0, count <= data.count - offset else {
                throw failure("the file ends inside \(field) (truncated, or not a FAISS index)")
            }
            defer { offset += count }
            return data[offset..<(offset + count)]
        }
        mutating func skip(_ count: Int, _ field: String) throws { _ = try bytes(count, field) }
        mutating func fourcc(_ field: String) throws -> String {
            let raw = try bytes(4, field)
            return String(decoding: raw, as: UTF8.self)
        }
        mutating func int32(_ field: String) throws -> Int32 {
            let raw = try bytes(4, field)
            return raw.reversed().reduce(0) { ($0 << 8) | Int32(truncatingIfNeeded: $1) }
        }
        mutating func int64(_ field: String) throws -> Int64 {
            let raw = try bytes(8, field)
            return raw.reversed().reduce(0) { ($0 << 8) | Int64($1) }
        }
        mutating func size(_ field: String, limit: Int) throws -> Int {
            let value = try int64(field)
            guard value >= 0, value <= Int64(limit) else { throw failure("\(field) = \(UInt64(bitPattern: value)) is out of range") }
            return Int(value)
        }
        mutating func float(_ field: String) throws -> Float { Float(bitPattern: UInt32(truncatingIfNeeded: try int32(field))) }
        mutating func byte(_ field: String) throws -> UInt8 { try bytes(1, field).first! }
        mutating func bool(_ field: String) throws -> Bool {
            let value = try byte(field)
            guard value <= 1 else { throw failure("\(field) is byte \(value), not a bool") }
            return value == 1
        }
        mutating func floats(_ count: Int, _ field: String) throws -> [Float] {
            let raw = try bytes(count * 4, field)
            return raw.withUnsafeBytes { buffer in (0..<count).map { Float(bitPattern: UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
        }
        mutating func header(_ what: String) throws -> (d: Int, count: Int, metric: Int32) {
            let d = try int32("\(what) d")
            let count = try int64("\(what) ntotal")
            guard d >= 1, d <= 65_536 else { throw failure("\(what) dimension \(d) is out of range") }
            guard count >= 0 else { throw failure("\(what) ntotal \(count) is negative") }
            _ = try int64("\(what) dummy"); _ = try int64("\(what) dummy")
            guard try bool("\(what) is_trained") else { throw failure("\(what) is not trained") }
            let metric = try int32("\(what) metric type")
            if metric > 1 { _ = try float("\(what) metric arg") }
            return (Int(d), Int(count), metric)
        }
    }
}
