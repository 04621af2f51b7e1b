import Foundation
import Testing

/// The outside of the tool as committed text: every command's `--help`, the job schema, and
/// each command's summary line with its measurements masked. A change to any of them shows up
/// here; `make golden` rewrites the files after an intended change (review the diff).
@Suite("Golden output")
struct GoldenTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Golden").path

    static let commands = ["info", "generate", "groundtruth", "knn-graph", "kmeans", "train", "search", "evaluate", "dedup",
                           "run", "validate", "slurm", "schema", "export", "import", "verify"]

    /// Help is laid out for a fixed width, whatever the terminal.
    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["COLUMNS"] = "100"
        return environment
    }

    func compare(_ actual: String, golden name: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let path = Self.folder + "/" + name
        if ProcessInfo.processInfo.environment["SIMJOB_WRITE_GOLDEN"] == "1" {
            FileManager.default.createFile(atPath: path, contents: Data(actual.utf8))
            return
        }
        guard let expected = try? String(contentsOfFile: path, encoding: .utf8) else {
            Issue.record("missing golden file \(path) (run make golden)", sourceLocation: sourceLocation)
            return
        }
        if actual != expected {
            let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
            let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let first = zip(actualLines, expectedLines).enumerated().first { $0.element.0 != $0.element.1 }
            let where_ = first.map { "line \($0.offset + 1): got '\($0.element.0)', golden '\($0.element.1)'" }
                ?? "lengths differ (\(actualLines.count) vs \(expectedLines.count) lines)"
            Issue.record("\(name) differs from its golden file, \(where_) (run make golden if intended)", sourceLocation: sourceLocation)
        }
    }

    @Test("every command's --help matches its golden file", arguments: commands)
    func help(command: String) throws {
        let result = try runProgram(simjobPath, ["help", command], environment: Self.environment)
        #expect(result.status == 0)
        compare(result.stdout, golden: "help-\(command).txt")
    }

    @Test("the job schema matches its golden file")
    func schema() throws {
        let result = try runProgram(simjobPath, ["schema"], environment: Self.environment)
        #expect(result.status == 0)
        compare(result.stdout, golden: "schema.txt")
    }

    /// Numbers that are measurements (times, rates, memory) masked as '#'.
    static func masked(_ text: String, folder: String) -> String {
        var result = text.replacingOccurrences(of: folder, with: "TMP")
        // Times and rates vary from run to run; objectives and errors in their last digits from one
        // CPU's BLAS kernels to another's. Counts, shapes and settings stay.
        let patterns = [
            #"[0-9]+(\.[0-9]+)? (s|GFLOP/s|MiB|KiB|GiB|B|rows/s|queries/s|vectors/s|MB/s)\b"#,
            #"[0-9]+(\.[0-9]+)? ms\b"#,
            // Exact re-scores depend on the order tiles tighten the lists (thread scheduling).
            #"[0-9]+(\.[0-9]+)?(?= pairs re-scored per row)"#,
            #"(?<=objective |imbalance |error )[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?"#,
            #"(?m)^( +[0-9]+) .*$"#,
        ]
        for pattern in patterns {
            let expression = try! NSRegularExpression(pattern: pattern)
            let range = NSRange(result.startIndex..., in: result)
            result = expression.stringByReplacingMatches(in: result, range: range, withTemplate: pattern.hasPrefix("(?m)") ? "$1 #" : "#")
        }
        return result
    }

    @Test("each command's summary line matches its golden file, measurements masked")
    func summaries() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        let steps: [[String]] = [
            ["generate", data, "--n", "600", "--queries", "20", "--dim", "16", "--k", "10", "--duplicates", "0.05", "--seed", "4"],
            ["groundtruth", data, "--k", "5", "--output", folder.file("truth.hdf5"), "--threads", "2"],
            ["knn-graph", data, "--k", "5", "--output", folder.file("graph.hdf5"), "--threads", "2"],
            ["kmeans", data, "--k", "8", "--output", folder.file("kmeans.hdf5"), "--threads", "2"],
            ["train", data, "--nlist", "8", "--m", "4", "--output", folder.file("index.hdf5"), "--threads", "2"],
            ["search", folder.file("index.hdf5"), "--queries", data, "--k", "5", "--nprobe", "8", "--output", folder.file("search.hdf5"), "--threads", "2"],
            ["dedup", data, "--threshold", "0.05", "--output", folder.file("dedup.hdf5"), "--threads", "2"],
        ]
        var lines: [String] = []
        for arguments in steps {
            let result = try runProgram(simjobPath, arguments + ["--quiet"], environment: Self.environment)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            lines.append("$ simjob " + arguments.joined(separator: " ").replacingOccurrences(of: folder.path, with: "TMP"))
            lines.append(Self.masked(result.stdout, folder: folder.path).trimmingCharacters(in: .newlines))
        }
        compare(lines.joined(separator: "\n") + "\n", golden: "summaries.txt")
    }
}
