import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobKernels

/// `simjob verify`: is this artifact built from these vectors, with these tags? A tag the data
/// file also carries (a root text attribute, such as `model`) must have the same value there.
public enum VerifyOperation {
    /// One line of the report.
    public struct Check: Sendable {
        public var name: String
        public var artifact: String
        public var data: String
        public var passed: Bool?  // nil: information only
    }

    public struct Report: Sendable {
        public var artifact: String
        public var against: String
        public var checks: [Check] = []
        public var failures: [String] { checks.filter { $0.passed == false }.map(\.name) }
        public var passed: Bool { failures.isEmpty }

        /// The table `verify` prints.
        public var table: String {
            let header = Check(name: "check", artifact: "artifact", data: "data", passed: nil)
            let rows = [header] + checks
            let widths = [rows.map(\.name.count).max()!, rows.map(\.artifact.count).max()!, rows.map(\.data.count).max()!]
            func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
            return rows.enumerated().map { index, check in
                let result = index == 0 ? "result" : check.passed.map { $0 ? "ok" : "MISMATCH" } ?? "-"
                return [pad(check.name, widths[0]), pad(check.artifact, widths[1]), pad(check.data, widths[2]), result].joined(separator: "  ")
            }.joined(separator: "\n")
        }

        /// The one error line of a failed verification.
        public var failureMessage: String {
            let details = checks.filter { $0.passed == false }.map { "\($0.name): \($0.artifact) vs \($0.data)" }
            return "\(artifact): does not match \(against): " + details.joined(separator: "; ")
        }
    }

    /// Checks `artifactPath` against the vectors `against` and the tags `required`. Never throws
    /// for a mismatch (the report says it); throws for files that cannot be read or an artifact
    /// without provenance.
    public static func run(artifact artifactPath: String, against: DatasetReference, required: [String: String], threads: Int? = nil) throws -> Report {
        let file = try HDF5File.open(artifactPath)
        guard let provenance = try Provenance.load(from: file) else {
            throw SimjobError("\(artifactPath): no provenance group (built by another tool, or by simjob before 0.15); rebuild it to verify it")
        }
        let source = try VectorSource(against, threads: threads)
        var report = Report(artifact: artifactPath, against: against.description)
        func add(_ name: String, _ artifact: String, _ data: String, _ passed: Bool?) {
            report.checks.append(Check(name: name, artifact: artifact, data: data, passed: passed))
        }
        add("artifact", provenance.artifact, "-", nil)
        add("built from", provenance.source, against.description, nil)
        add("built", "simjob \(provenance.version), \(provenance.builtAt)", "-", nil)
        add("rows", "\(provenance.rows)", "\(source.rows)", provenance.rows == source.rows)
        add("dimension", "\(provenance.dimension)", "\(source.dimension)", provenance.dimension == source.dimension)
        if provenance.dimension == source.dimension {
            let sample = provenance.sampleRows.filter { $0 < source.rows }
            let (checksum, hashes) = try Provenance.fingerprint(source, sample: sample, threads: threads)
            let same = checksum == provenance.checksum
            add("checksum", Provenance.checksumText(provenance.checksum), Provenance.checksumText(checksum), same)
            if !same {
                let recorded = Dictionary(uniqueKeysWithValues: zip(provenance.sampleRows, provenance.sampleHashes))
                let differing = zip(sample, hashes).filter { recorded[$0.0] != $0.1 }.count
                let (low, high) = wilson(differing, of: sample.count)
                let estimate = sample.isEmpty ? 0 : Int((Double(differing) / Double(sample.count) * Double(source.rows)).rounded())
                add("rows changed", "\(differing) of \(sample.count) sampled rows differ",
                    String(format: "about %d of %d rows (95%% interval %d-%d)", estimate, source.rows,
                           Int((low * Double(source.rows)).rounded(.down)), Int((high * Double(source.rows)).rounded(.up))), false)
            }
        }
        let ids = try rowIDs(file, kind: provenance.artifact, rows: source.rows)
        add("row ids", ids.description, "rows 0..<\(source.rows)", ids.passed)
        // Tags the data file carries too (its root text attributes) must agree: an index built
        // under one model and checked against embeddings of another is skew.
        var dataTags: [String: String] = [:]
        for (name, value) in try source.file.attributes() where name != "distance" {
            if let text = value.stringValue { dataTags[name] = text }
        }
        for key in Set(provenance.tags.keys).union(required.keys).sorted() {
            let recorded = provenance.tags[key], wanted = required[key], current = dataTags[key]
            let expected = [wanted.map { "required: \($0)" }, current.map { "data: \($0)" }].compactMap { $0 }
            let passed: Bool? = wanted == nil && current == nil ? nil
                : (wanted == nil || recorded == wanted) && (current == nil || recorded == current)
            add("tag \(key)", recorded ?? "(none)", expected.isEmpty ? "-" : expected.joined(separator: ", "), passed)
        }
        return report
    }

    /// Whether every row of the set is present in the artifact, by its kind.
    static func rowIDs(_ file: HDF5File, kind: String, rows: Int) throws -> (description: String, passed: Bool) {
        switch kind {
        case "index":
            // The load checks ids are a permutation of 0..<count.
            let count = try IndexFile.load(file).count
            return ("\(count) ids, each once", count == rows)
        case "knn_graph":
            let neighbors = try KNNGraphFile.read(file).neighbors
            let ids = try neighbors.readAll(as: Int64.self)
            let bad = ids.firstIndex { $0 < 0 || $0 >= Int64(rows) }
            if let bad { return ("entry \(bad) is id \(ids[bad])", false) }
            return ("\(neighbors.rows) lists, ids in range", neighbors.rows == rows)
        case "dedup":
            let groups = try file.dataset("dedup/group"), keep = try file.dataset("dedup/keep")
            return ("\(groups.rows) groups, \(keep.rows) keep flags", groups.rows == rows && keep.rows == rows)
        default:
            return ("unknown artifact '\(kind)'", false)
        }
    }

    /// Wilson score interval (95 %) of x successes in n.
    static func wilson(_ x: Int, of n: Int) -> (Double, Double) {
        guard n > 0 else { return (0, 1) }
        let z = 1.96, p = Double(x) / Double(n), nn = Double(n)
        let centre = (p + z * z / (2 * nn)) / (1 + z * z / nn)
        let half = z * ((p * (1 - p) / nn + z * z / (4 * nn * nn)).squareRoot()) / (1 + z * z / nn)
        return (max(0, centre - half), min(1, centre + half))
    }
}
