import Foundation
import Testing
@testable import SimjobAlgorithms
@testable import SimjobOperations
import SimjobKernels

/// A fresh temporary folder per test, removed when the value goes away.
final class TemporaryFolder: @unchecked Sendable {
    let path: String
    init() {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("simjob-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
    /// Writes `text` to a file of the folder (a job file, usually) and returns its path.
    func write(_ text: String, name: String) -> String {
        let path = file(name)
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }
    var contents: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path))?.sorted() ?? [] }
}

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// The simjob executable built next to the test bundle.
let simjobPath: String = {
    var folder = Bundle.main.bundleURL
    for _ in 0..<3 {
        let candidate = folder.appendingPathComponent("simjob").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        folder = folder.deletingLastPathComponent()
    }
    let fromSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug/simjob").path
    return fromSource
}()

/// Runs a program, capturing its output through files (no pipe deadlocks on large output).
func runProgram(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: String? = nil) throws -> CommandResult {
    let folder = TemporaryFolder()
    let outPath = folder.file("stdout"), errPath = folder.file("stderr")
    FileManager.default.createFile(atPath: outPath, contents: nil)
    FileManager.default.createFile(atPath: errPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    process.standardOutput = FileHandle(forWritingAtPath: outPath)
    process.standardError = FileHandle(forWritingAtPath: errPath)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus,
        stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

func simjob(_ arguments: String...) throws -> CommandResult {
    try runProgram(simjobPath, arguments)
}

func simjob(_ arguments: [String]) throws -> CommandResult {
    try runProgram(simjobPath, arguments)
}

/// Runs simjob (with `--quiet` when `quiet`), which must fail with exit status `status` (nil:
/// any non-zero one, for cases the argument parser refuses with its own status) and exactly
/// one `error:` line on stderr naming every fragment.
func expectOneLineError(_ arguments: [String], mentions fragments: [String], status: Int32? = 1, quiet: Bool = false,
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
    let result = try simjob(arguments + (quiet ? ["--quiet"] : []))
    if let status {
        #expect(result.status == status, "exit \(result.status) for \(arguments): \(result.stderr)", sourceLocation: sourceLocation)
    } else {
        #expect(result.status != 0, "exit \(result.status) for \(arguments): \(result.stderr)", sourceLocation: sourceLocation)
    }
    let lines = result.stderr.split(separator: "\n")
    #expect(lines.count == 1 && lines[0].hasPrefix("error: "), "expected one error line, got: \(result.stderr)", sourceLocation: sourceLocation)
    for fragment in fragments { #expect(result.stderr.contains(fragment), "'\(fragment)' not in: \(result.stderr)", sourceLocation: sourceLocation) }
}

/// Runs a Python script (with h5py and numpy) and returns its stdout; a failing script fails
/// the calling test with its stderr.
@discardableResult
func python(_ script: String, _ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let result = try runProgram("/usr/bin/env", ["python3", "-c", script] + arguments)
    #expect(result.status == 0, "python failed: \(result.stderr)", sourceLocation: sourceLocation)
    return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Seeded standard normal data, `rows x dimension`.
func gaussianMatrix(rows: Int, dimension: Int, seed: UInt64) -> FloatMatrix {
    let matrix = FloatMatrix(rows: rows, columns: dimension)
    var rng = SeededGenerator(seed: seed)
    rng.fillGaussian(matrix.pointer, count: rows * dimension)
    return matrix
}

/// The reference: every distance in Double, straight from the definitions, sorted by
/// (distance, id). `excludeSelf` drops j == i (a graph).
func bruteForce(
    queries: FloatMatrix, base: FloatMatrix, k: Int, metric: Metric, excludeSelf: Bool
) -> [[(id: Int, distance: Double)]] {
    let d = queries.columns
    func distance(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Double {
        var dot = 0.0, xx = 0.0, yy = 0.0, squared = 0.0
        for j in 0..<d {
            let a = Double(x[j]), b = Double(y[j])
            dot += a * b
            xx += a * a
            yy += b * b
            squared += (a - b) * (a - b)
        }
        switch metric {
        case .euclidean: return squared.squareRoot()
        case .angular: return xx == 0 || yy == 0 ? 1 : 1 - dot / (xx.squareRoot() * yy.squareRoot())
        case .ip: return -dot
        }
    }
    return (0..<queries.rows).map { i in
        var all: [(id: Int, distance: Double)] = []
        for j in 0..<base.rows where !(excludeSelf && i == j) {
            all.append((j, distance(queries.row(i), base.row(j))))
        }
        all.sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
        return Array(all.prefix(k + 1))  // one extra entry, to recognise a tie at the k-th place
    }
}

/// Checks a result against the reference: distances within `tolerance`, every position's id
/// equal wherever the reference distance there is not tied (within tolerance) with another.
func expectMatches(
    _ table: NeighborTable, _ reference: [[(id: Int, distance: Double)]], tolerance: Double,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    var mismatches = 0
    var examples: [String] = []
    for row in 0..<table.rows {
        let ids = table.ids(ofRow: row), distances = table.distances(ofRow: row)
        let expected = reference[row]
        #expect(Set(ids).count == ids.count, "row \(row) repeats an id: \(ids)", sourceLocation: sourceLocation)
        for position in 0..<table.k {
            if abs(Double(distances[position]) - expected[position].distance) > tolerance {
                mismatches += 1
                examples.append("row \(row) #\(position): distance \(distances[position]) vs \(expected[position].distance)")
            }
            let tiedBefore = position > 0 && abs(expected[position - 1].distance - expected[position].distance) <= tolerance
            let tiedAfter = position + 1 < expected.count && abs(expected[position + 1].distance - expected[position].distance) <= tolerance
            if !tiedBefore && !tiedAfter && Int(ids[position]) != expected[position].id {
                mismatches += 1
                examples.append("row \(row) #\(position): id \(ids[position]) vs \(expected[position].id)")
            }
        }
    }
    #expect(mismatches == 0, "\(mismatches) mismatching entries: \(examples.prefix(5))", sourceLocation: sourceLocation)
}

/// Polls `condition` every 20 ms until it holds (true) or `timeout` seconds pass (false).
func waitFor(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.02)
    }
    return condition()
}

/// A simjob process started in the background (for signals), its output going to files.
final class BackgroundSimjob {
    let process = Process()
    let folder = TemporaryFolder()

    init(_ arguments: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: simjobPath)
        process.arguments = arguments
        if let environment { process.environment = environment }
        FileManager.default.createFile(atPath: folder.file("stdout"), contents: nil)
        FileManager.default.createFile(atPath: folder.file("stderr"), contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: folder.file("stdout"))
        process.standardError = FileHandle(forWritingAtPath: folder.file("stderr"))
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// Waits for the process to end and returns its result.
    func finish() -> CommandResult {
        process.waitUntilExit()
        return CommandResult(
            status: process.terminationStatus,
            stdout: (try? String(contentsOfFile: folder.file("stdout"), encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: folder.file("stderr"), encoding: .utf8)) ?? "")
    }
}

/// A checksum of a file's bytes (to show an input or a previous output was left as it was).
func fileDigest(_ path: String) -> String? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in data { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return "\(data.count):\(String(hash, radix: 16))"
}
