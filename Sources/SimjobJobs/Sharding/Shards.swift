import Foundation
import SimjobAlgorithms
import SimjobHDF5

/// Shard `index` of `count` (0-based, as Slurm array indices and Kubernetes completion indices
/// are given to the tasks).
public struct ShardID: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// The most shards a step is cut into.
    public static let maximumCount = 10_000

    public var description: String { "\(index)/\(count)" }

    /// `I/N` from the command line.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[1]) else {
            throw SimjobError("--shard takes I/N, shard I of N counted from 0 (got '\(text)')")
        }
        let index: Int
        if parts[0].isEmpty {
            // `--shard /N`: the index comes from the scheduler.
            index = try ShardID.environmentIndex()
        } else if let given = Int(parts[0]) {
            index = given
        } else {
            throw SimjobError("--shard takes I/N, shard I of N counted from 0 (got '\(text)')")
        }
        try self.init(checking: index, count: count)
    }

    init(checking index: Int, count: Int) throws {
        guard count >= 1, count <= ShardID.maximumCount else {
            throw SimjobError("the shard count must be between 1 and \(ShardID.maximumCount) (got \(count))")
        }
        guard index >= 0, index < count else {
            throw SimjobError("shard \(index) of \(count) does not exist: shards are counted from 0 to \(count - 1)")
        }
        self.index = index
        self.count = count
    }

    /// The shard index a batch scheduler gives its task: Slurm's `SLURM_ARRAY_TASK_ID`, or
    /// Kubernetes' `JOB_COMPLETION_INDEX` (Indexed Jobs).
    public static func environmentIndex(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int {
        for name in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
            guard let text = environment[name] else { continue }
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw SimjobError("\(name)=\(text) is not a shard index (a whole number)")
            }
            return value
        }
        throw SimjobError("no shard index given: pass --shard I/N, or run as a Slurm array task (SLURM_ARRAY_TASK_ID) or a Kubernetes indexed job (JOB_COMPLETION_INDEX)")
    }

    /// Rows `0..<n` cut into `count` nearly equal ranges; this shard's.
    public func evenRange(of n: Int) -> Range<Int> {
        (n * index / count)..<(n * (index + 1) / count)
    }
}

/// What a shard's manifest records: which job, step and settings it belongs to, what it
/// covers, and its data file's size and checksum. Written after the data file is complete
/// (both by temporary name and rename), so a manifest always describes a whole file.
public struct ShardManifest: Codable, Sendable, Equatable {
    public var format = "simjob-shard"
    public var version = 1
    public var job: String
    public var step: String
    public var kind: String
    /// The step's fingerprint (its settings and the identity of its inputs).
    public var fingerprint: String
    public var shard: Int
    public var shards: Int
    /// Rows of the step's work this shard covers (query rows, graph rows, or first rows of pairs).
    public var rows: [Int]
    public var file: FileFingerprint
    public var host: String
    public var seconds: Double
    public var finished: Date
    public var summary: String
    public var simjob: String
}

/// The shards of one step, kept in `OUTPUT/shards/STEP/` as `shard-I-of-N.hdf5` with its
/// manifest `shard-I-of-N.json`, until the merge has written the step's output.
public struct ShardStore: Sendable {
    public let folder: String
    public let step: PlannedStep
    public let job: String

    public init(outputFolder: String, step: PlannedStep, job: String) {
        folder = ShardStore.folder(outputFolder: outputFolder, step: step.name)
        self.step = step
        self.job = job
    }

    public static func folder(outputFolder: String, step: String) -> String { outputFolder + "/shards/" + step }

    /// The shared preparation's file and manifest (a manifest of shard -1 of 0).
    public var preparedPath: String { folder + "/prepared.hdf5" }
    var preparedManifestPath: String { folder + "/prepared.json" }

    /// Whether the preparation is there, for these settings and inputs, intact.
    public func preparedState() -> State {
        let path = preparedManifestPath
        guard FileManager.default.fileExists(atPath: path) else { return .missing }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let data = FileManager.default.contents(atPath: path), let manifest = try? decoder.decode(ShardManifest.self, from: data),
              manifest.format == "simjob-shard" else { return .damaged("its manifest is not one simjob wrote") }
        if manifest.step != step.name || manifest.fingerprint != step.fingerprint { return .foreign("made with other settings or inputs") }
        guard let now = FileFingerprint(path: preparedPath) else { return .damaged("its data file is missing") }
        if now != manifest.file { return .damaged("its data file changed since it was written") }
        return .done(manifest)
    }

    func writePreparedManifest(seconds: Double, summary: String) throws {
        guard let file = FileFingerprint(path: preparedPath) else { throw SimjobError("\(preparedPath): vanished before its manifest was written") }
        let manifest = ShardManifest(
            job: job, step: step.name, kind: step.kind.rawValue, fingerprint: step.fingerprint, shard: -1, shards: 0, rows: [],
            file: file, host: OutputPath.currentHost, seconds: seconds, finished: Date(), summary: summary, simjob: SimjobVersion.current)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        try AtomicDataFile.write(try encoder.encode(manifest), to: preparedManifestPath)
    }

    func stem(_ shard: ShardID) -> String { String(format: "shard-%04d-of-%04d", shard.index, shard.count) }
    public func dataPath(_ shard: ShardID) -> String { folder + "/" + stem(shard) + ".hdf5" }
    public func manifestPath(_ shard: ShardID) -> String { folder + "/" + stem(shard) + ".json" }

    /// The state of one shard.
    public enum State: Sendable, Equatable {
        case done(ShardManifest)
        case missing
        /// Its manifest or data file cannot be read, or the file changed since it was written.
        case damaged(String)
        /// It belongs to another job, step, settings or shard count.
        case foreign(String)

        public var isDone: Bool { if case .done = self { return true } else { return false } }
        public var label: String {
            switch self {
            case .done: return "done"
            case .missing: return "missing"
            case .damaged(let why): return "damaged (\(why))"
            case .foreign(let why): return "foreign (\(why))"
            }
        }
    }

    /// Checks shard `shard`: manifest, ownership, data file checksum.
    public func state(_ shard: ShardID) -> State {
        let path = manifestPath(shard)
        guard FileManager.default.fileExists(atPath: path) else { return .missing }
        guard let data = FileManager.default.contents(atPath: path) else { return .damaged("its manifest cannot be read") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let manifest = try? decoder.decode(ShardManifest.self, from: data), manifest.format == "simjob-shard" else {
            return .damaged("its manifest is not one simjob wrote")
        }
        if manifest.step != step.name || manifest.kind != step.kind.rawValue { return .foreign("made for step '\(manifest.step)'") }
        if manifest.shard != shard.index || manifest.shards != shard.count {
            return .foreign("its manifest says shard \(manifest.shard)/\(manifest.shards)")
        }
        if manifest.fingerprint != step.fingerprint { return .foreign("made with other settings or inputs") }
        guard let now = FileFingerprint(path: dataPath(shard)) else { return .damaged("its data file is missing") }
        if now != manifest.file { return .damaged("its data file changed since it was written (\(manifest.file) then, \(now) now)") }
        return .done(manifest)
    }

    /// Shard counts that files in the folder were written for (normally one).
    public func countsPresent() -> [Int] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var counts = Set<Int>()
        for name in names where name.hasPrefix("shard-") && name.hasSuffix(".json") {
            let parts = name.dropFirst("shard-".count).dropLast(".json".count).components(separatedBy: "-of-")
            if parts.count == 2, let count = Int(parts[1]) { counts.insert(count) }
        }
        return counts.sorted()
    }

    /// Every shard of a count, in order.
    public func states(count: Int) -> [State] {
        (0..<count).map { state(ShardID(index: $0, count: count)) }
    }

    /// Records a finished shard: its data file is in place; the manifest goes beside it.
    func writeManifest(_ shard: ShardID, rows: Range<Int>, seconds: Double, summary: String) throws {
        guard let file = FileFingerprint(path: dataPath(shard)) else {
            throw SimjobError("\(dataPath(shard)): the shard's data file vanished before its manifest was written")
        }
        let manifest = ShardManifest(
            job: job, step: step.name, kind: step.kind.rawValue, fingerprint: step.fingerprint, shard: shard.index, shards: shard.count,
            rows: [rows.lowerBound, rows.upperBound], file: file, host: OutputPath.currentHost, seconds: seconds, finished: Date(),
            summary: summary, simjob: SimjobVersion.current)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        try AtomicDataFile.write(try encoder.encode(manifest), to: manifestPath(shard))
    }

    /// The preparation the shards of a step share, done and intact; else one line saying how
    /// to redo it (`jobFile`: the job as the user names it).
    func requirePreparation(jobFile: String) throws -> ShardManifest {
        let prepared = preparedState()
        guard case .done(let manifest) = prepared else {
            throw SimjobError("step '\(step.name)': the shards' shared preparation \(preparedPath) is \(prepared.label); run `simjob run \(jobFile) --prepare \(step.name)` and the shards again")
        }
        return manifest
    }

    /// The shards ready to merge, in order; throws one line naming every shard that is not.
    public func readyToMerge(jobFile: String) throws -> [ShardManifest] {
        let counts = countsPresent()
        guard let count = counts.first else { return [] }
        guard counts.count == 1 else {
            throw SimjobError("step '\(step.name)': \(folder) holds shards of \(counts.map(String.init).joined(separator: " and ")) shards; keep one set (remove the other's files) and run again")
        }
        var problems: [String] = []
        var manifests: [ShardManifest] = []
        for (index, state) in states(count: count).enumerated() {
            if case .done(let manifest) = state { manifests.append(manifest) } else { problems.append("\(index)/\(count) \(state.label)") }
        }
        guard problems.isEmpty else {
            throw SimjobError("step '\(step.name)': cannot merge its shards in \(folder): shard \(problems.joined(separator: ", ")); run them with `simjob run \(jobFile) --step \(step.name) --shard I/\(count)`, or remove \(folder) to run the step on one machine")
        }
        var next = 0
        for manifest in manifests {
            guard manifest.rows.count == 2, manifest.rows[0] == next, manifest.rows[1] >= next else {
                throw SimjobError("step '\(step.name)': shard \(manifest.shard)/\(count) covers rows \(manifest.rows) where rows from \(next) were expected; remove \(folder) and run the shards again")
            }
            next = manifest.rows[1]
        }
        return manifests
    }

    /// Removes the shards once the merged output is recorded.
    func remove() {
        try? FileManager.default.removeItem(atPath: folder)
        let parent = (folder as NSString).deletingLastPathComponent
        if (try? FileManager.default.contentsOfDirectory(atPath: parent))?.isEmpty == true { try? FileManager.default.removeItem(atPath: parent) }
    }
}

/// A step kind whose work splits into shards that run apart (other processes, other machines)
/// and merge into exactly the output one run gives.
protocol ShardableAction: StepAction {
    /// Whether these settings shard (dedup shards in exact mode only).
    var isShardable: Bool { get }

    /// Whether the shards share work done once before them (`prepare`).
    var needsPreparation: Bool { get }

    /// The work every shard shares (trained quantizers), done once by `run --prepare STEP`
    /// into `file`; returns a one-line summary.
    func prepare(into file: HDF5File, step: PlannedStep, runner: JobRunner) throws -> String

    /// Writes shard `shard`'s part of the work into `file` (an HDF5 file, committed by the
    /// caller); returns the rows it covers and a one-line summary.
    func runShard(_ shard: ShardID, into file: HDF5File, step: PlannedStep, runner: JobRunner) throws -> (rows: Range<Int>, summary: String)

    /// Merges the shards (their data files, in order, all checked) into the step's outputs;
    /// returns the step's summary.
    func merge(_ shards: [String], manifests: [ShardManifest], step: PlannedStep, runner: JobRunner) throws -> String
}

extension ShardableAction {
    var isShardable: Bool { true }
    var needsPreparation: Bool { false }
    func prepare(into file: HDF5File, step: PlannedStep, runner: JobRunner) throws -> String { "" }
}
