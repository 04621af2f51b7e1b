import Dispatch
import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobKernels

/// Where an artifact (an index, a k-NN graph, a dedup result) came from, stamped into it so a
/// stale or skewed artifact is caught before it ships (`simjob verify`):
///
///     provenance/               attributes: artifact (index, knn_graph, dedup), source
///                               (FILE:DATASET as given), source_path (absolute), rows,
///                               dimension, checksum (16 hex digits: every row's content hash
///                               folded in row order, see `RowHash`), settings (the build's
///                               settings, JSON), simjob_version, built_at (UTC, ISO 8601),
///                               and one attribute `tag.KEY` per tag
///     provenance/sample_rows    int64 [S]   seeded sample of row numbers (S = min(rows, 1024))
///     provenance/sample_hashes  int64 [S]   those rows' content hashes (bit patterns)
///
/// Tags are the input file's own root text attributes (all but `distance`: h5py users write
/// `f.attrs["model"] = "minilm-v2"`) overlaid with the user's (`--tag KEY=VALUE`).
public struct Provenance: Sendable, Equatable {
    public var artifact: String
    public var source: String
    public var sourcePath: String
    public var rows: Int
    public var dimension: Int
    public var checksum: UInt64
    public var sampleRows: [Int]
    public var sampleHashes: [UInt64]
    public var tags: [String: String]
    public var settings: String
    public var version: String
    public var builtAt: String

    /// The user's tags for artifacts built in this task (the command's or job step's `--tag`).
    @TaskLocal public static var userTags: [String: String] = [:]

    public static let sampleSize = 1024
    static let sampleSeed: UInt64 = 0x5EED_0F_0001

    public static func checksumText(_ value: UInt64) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// `KEY=VALUE` parsed; keys are letters, digits and `_ . -`.
    public static func parseTag(_ text: String, what: String = "--tag") throws -> (String, String) {
        guard let equals = text.firstIndex(of: "=") else { throw SimjobError("\(what) '\(text)': expected KEY=VALUE") }
        let key = String(text[..<equals]), value = String(text[text.index(after: equals)...])
        guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || "_.-".contains($0) }) else {
            throw SimjobError("\(what) '\(text)': the key must be letters, digits, '_', '.' or '-'")
        }
        return (key, value)
    }

    public static func parseTags(_ texts: [String], what: String = "--tag") throws -> [String: String] {
        var tags: [String: String] = [:]
        for text in texts {
            let (key, value) = try parseTag(text, what: what)
            tags[key] = value
        }
        return tags
    }

    /// The content of a set: its checksum and the hashes of the rows `sample` (sorted), in one
    /// streaming pass.
    public static func fingerprint(_ source: VectorSource, sample: [Int], threads: Int? = nil) throws -> (checksum: UInt64, hashes: [UInt64]) {
        let d = source.dimension
        var state = RowHash.start(rows: source.rows, dimension: d)
        var sampled = [UInt64](repeating: 0, count: sample.count)
        var next = 0
        let blockRows = 65_536
        let hashes = UnsafeMutablePointer<UInt64>.allocate(capacity: blockRows)
        defer { hashes.deallocate() }
        let workers = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        try source.forEachBlock(blockRows: blockRows) { range, block in
            hashRows(block, rows: range.count, dimension: d, workers: workers, into: hashes)
            for row in 0..<range.count { state = RowHash.fold(state, hashes[row]) }
            while next < sample.count && sample[next] < range.upperBound {
                sampled[next] = hashes[sample[next] - range.lowerBound]
                next += 1
            }
        }
        return (state, sampled)
    }

    /// Row hashes of `rows` consecutive rows, in parallel pieces.
    static func hashRows(_ x: UnsafePointer<Float>, rows: Int, dimension d: Int, workers: Int, into hashes: UnsafeMutablePointer<UInt64>) {
        let shared = UnsafeSendable((x, hashes))
        let pieces = min(workers * 4, max(1, rows / 1024))
        DispatchQueue.concurrentPerform(iterations: pieces) { piece in
            let first = rows * piece / pieces, last = rows * (piece + 1) / pieces
            RowHash.rows(shared.value.0 + first * d, rows: last - first, dimension: d, into: shared.value.1 + first)
        }
    }

    /// The checksum and sample hashes of a set of `rows x dimension` and the sample's rows, as
    /// `of` records them.
    public struct Content: Sendable {
        public var rows: Int
        public var dimension: Int
        public var checksum: UInt64
        public var sampleRows: [Int]
        public var sampleHashes: [UInt64]
    }

    /// The sample of rows whose hashes a set of `rows` rows records.
    static func sampleRows(of rows: Int) -> [Int] { sampleIndices(min(sampleSize, rows), from: rows, seed: sampleSeed).sorted() }

    /// The content of a set already in memory as it was read (before any normalisation or
    /// reordering), equal to what `fingerprint` finds reading it again: an engine that holds
    /// the set takes it here, so stamping does not read the file a second time.
    public static func content(of vectors: FloatMatrix, threads: Int? = nil) -> Content {
        let n = vectors.rows, d = vectors.columns
        let hashes = UnsafeMutablePointer<UInt64>.allocate(capacity: max(n, 1))
        defer { hashes.deallocate() }
        hashRows(vectors.pointer, rows: n, dimension: d, workers: max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount), into: hashes)
        var state = RowHash.start(rows: n, dimension: d)
        for row in 0..<n { state = RowHash.fold(state, hashes[row]) }
        let sample = sampleRows(of: n)
        return Content(rows: n, dimension: d, checksum: state, sampleRows: sample, sampleHashes: sample.map { hashes[$0] })
    }

    /// Reads all of `source` (into a spill file in `directory` when given), takes its content
    /// as read, then normalises the rows for angular: the vectors an engine holds and the
    /// content its artifact's provenance records, from one read.
    public static func readMatrix(_ source: VectorSource, metric: Metric, spillingTo directory: String?, threads: Int?) throws -> (FloatMatrix, Content) {
        let vectors = try source.readMatrix(0..<source.rows, spillingTo: directory)
        let content = content(of: vectors, threads: threads)
        if metric.normalizesVectors { vectors.normalizeRows(threads: threads) }
        return (vectors, content)
    }

    /// The provenance of an artifact built from `reference` now; `content` when the caller
    /// computed it from the vectors it read (`content(of:)`), else the set is read again.
    public static func of(_ reference: DatasetReference, artifact: String, settings: String, threads: Int? = nil, content: Content? = nil) throws -> Provenance {
        let source = try VectorSource(reference, threads: threads)
        if let content, content.rows != source.rows || content.dimension != source.dimension {
            throw SimjobError("\(reference): its \(source.rows) x \(source.dimension) rows are not the \(content.rows) x \(content.dimension) the artifact was built from (the file changed while it ran)")
        }
        let sample = content?.sampleRows ?? sampleRows(of: source.rows)
        let (checksum, hashes) = try content.map { ($0.checksum, $0.sampleHashes) } ?? fingerprint(source, sample: sample, threads: threads)
        var tags: [String: String] = [:]
        for (name, value) in try source.file.attributes() where name != "distance" {
            if let text = value.stringValue { tags[name] = text }
        }
        for (key, value) in userTags { tags[key] = value }
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return Provenance(
            artifact: artifact, source: reference.description, sourcePath: URL(fileURLWithPath: reference.path).standardizedFileURL.path,
            rows: source.rows, dimension: source.dimension, checksum: checksum, sampleRows: sample, sampleHashes: hashes,
            tags: tags, settings: settings, version: SimjobVersion.current, builtAt: formatter.string(from: Date()))
    }

    /// Settings as canonical JSON (sorted keys).
    public static func describe<T: Encodable>(_ settings: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(settings)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Computes the provenance of `reference` and writes it into `file`.
    public static func stamp<T: Encodable>(_ file: HDF5File, from reference: DatasetReference, artifact: String, settings: T, threads: Int? = nil,
                                           content: Content? = nil) throws {
        try stamp(file, from: reference, artifact: artifact, settingsText: describe(settings), threads: threads, content: content)
    }

    public static func stamp(_ file: HDF5File, from reference: DatasetReference, artifact: String, settingsText: String, threads: Int? = nil,
                             content: Content? = nil) throws {
        try of(reference, artifact: artifact, settings: settingsText, threads: threads, content: content).save(to: file)
    }

    public func save(to file: HDF5File, group: String = "provenance") throws {
        try file.createGroup(group)
        let attributes: [(String, AttributeValue)] = [
            ("artifact", .string(artifact)), ("source", .string(source)), ("source_path", .string(sourcePath)),
            ("rows", .int(Int64(rows))), ("dimension", .int(Int64(dimension))), ("checksum", .string(Provenance.checksumText(checksum))),
            ("settings", .string(settings)), ("simjob_version", .string(version)), ("built_at", .string(builtAt)),
        ]
        for (name, value) in attributes { try file.setAttribute(name, value, on: group) }
        for (key, value) in tags.sorted(by: { $0.key < $1.key }) { try file.setAttribute("tag.\(key)", .string(value), on: group) }
        try file.write("\(group)/sample_rows", sampleRows.map(Int64.init), shape: [sampleRows.count])
        try file.write("\(group)/sample_hashes", sampleHashes.map { Int64(bitPattern: $0) }, shape: [sampleHashes.count])
    }

    /// The provenance recorded in `file`, checked field by field; nil when it has none.
    public static func load(from file: HDF5File, group: String = "provenance") throws -> Provenance? {
        guard file.exists(group), !file.isDataset(group) else { return nil }
        let place = "\(file.path):\(group)"
        var values: [String: AttributeValue] = [:]
        for (name, value) in try file.attributes(of: group) { values[name] = value }
        func text(_ name: String) throws -> String {
            guard let value = values[name]?.stringValue else { throw SimjobError("\(place): missing or non-text attribute '\(name)' (altered provenance)") }
            return value
        }
        func whole(_ name: String) throws -> Int {
            guard let value = values[name]?.intValue, value >= 0 else { throw SimjobError("\(place): missing or bad attribute '\(name)' (altered provenance)") }
            return Int(value)
        }
        let checksumText = try text("checksum")
        guard checksumText.count == 16, let checksum = UInt64(checksumText, radix: 16) else {
            throw SimjobError("\(place): checksum '\(checksumText)' is not 16 hex digits (altered provenance)")
        }
        let rows = try whole("rows")
        let sampleRows = try file.dataset("\(group)/sample_rows").readAll(as: Int64.self).map(Int.init)
        let sampleHashes = try file.dataset("\(group)/sample_hashes").readAll(as: Int64.self).map { UInt64(bitPattern: $0) }
        guard sampleRows.count == sampleHashes.count, sampleRows.allSatisfy({ $0 >= 0 && $0 < rows }),
              zip(sampleRows, sampleRows.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw SimjobError("\(place): sample_rows and sample_hashes do not match the \(rows) rows (altered provenance)")
        }
        var tags: [String: String] = [:]
        for (name, value) in values where name.hasPrefix("tag.") { tags[String(name.dropFirst(4))] = value.stringValue ?? value.description }
        return Provenance(
            artifact: try text("artifact"), source: try text("source"), sourcePath: try text("source_path"), rows: rows,
            dimension: try whole("dimension"), checksum: checksum, sampleRows: sampleRows, sampleHashes: sampleHashes, tags: tags,
            settings: (try? text("settings")) ?? "", version: try text("simjob_version"), builtAt: try text("built_at"))
    }
}
