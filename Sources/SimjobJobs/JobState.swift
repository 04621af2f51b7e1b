import Foundation
import SimjobHDF5

/// What a job has finished, kept in `OUTPUT/job-state.json` and rewritten atomically after every
/// step: a rerun skips steps whose fingerprint matches and whose outputs are all present.
public struct JobState: Codable, Sendable {
    public struct StepRecord: Codable, Sendable {
        public var kind: String
        public var fingerprint: String
        public var outputs: [String]
        public var seconds: Double
        public var finished: Date
        public var summary: String
        /// Each output's size and checksum when the step finished (nil in state files of older
        /// versions: such a step runs again).
        public var files: [String: FileFingerprint]?
    }

    public var version = 1
    public var job: String
    public var steps: [String: StepRecord] = [:]

    public static func path(in folder: String) -> String { folder + "/job-state.json" }

    /// The folder's state, and a warning when a state file was there but could not be read
    /// (every step then runs again). A state path that is not a regular file is an error.
    public static func load(folder: String, job: String) throws -> (JobState, warning: String?) {
        let path = JobState.path(in: folder)
        var info = stat()
        guard lstat(path, &info) == 0 else { return (JobState(job: job), nil) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw SimjobError("\(path): is not a regular file; simjob keeps the job's state there: move it away")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            return (JobState(job: job), "\(path) cannot be read; every step runs again")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return (try decoder.decode(JobState.self, from: data), nil)
        } catch {
            return (JobState(job: job), "\(path) is not a state file simjob wrote (damaged or edited); every step runs again and it is replaced")
        }
    }

    /// How the state names an output: relative to the job's folder, so another spelling of the
    /// folder (a symlink, an absolute path) finds the same records.
    static func key(_ output: String, folder: String) -> String {
        let prefix = folder.hasSuffix("/") ? folder : folder + "/"
        return output.hasPrefix(prefix) ? String(output.dropFirst(prefix.count)) : output
    }

    /// Writes the state under a temporary name, then renames it over the old one.
    public func save(folder: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(self)
        let path = JobState.path(in: folder)
        do {
            try AtomicDataFile.write(data, to: path)
        } catch let error as SimjobError {
            throw SimjobError("\(path): cannot save the job's state: \(error.message)")
        }
    }

    /// Why `step` must run, or nil when it is up to date: it finished with this fingerprint and
    /// every output is still exactly what it wrote (same size and checksum).
    func reasonToRun(_ step: PlannedStep, folder: String) -> String? {
        guard let record = steps[step.name] else { return "not run yet" }
        guard record.fingerprint == step.fingerprint else { return "its settings or inputs changed" }
        guard let files = record.files else { return "the state has no record of its outputs' contents" }
        for output in step.outputs {
            guard let recorded = files[JobState.key(output, folder: folder)] ?? files[output] else { return "no record of \(output)" }
            guard let now = FileFingerprint(path: output) else { return "\(output) is missing" }
            if now != recorded { return "\(output) changed since it was written (\(recorded) then, \(now) now)" }
        }
        return nil
    }
}

