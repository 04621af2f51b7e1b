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
    }

    public var version = 1
    public var job: String
    public var steps: [String: StepRecord] = [:]

    public static func path(in folder: String) -> String { folder + "/job-state.json" }

    public static func load(folder: String, job: String) -> JobState {
        let path = JobState.path(in: folder)
        guard let data = FileManager.default.contents(atPath: path) else { return JobState(job: job) }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return (try? decoder.decode(JobState.self, from: data)) ?? JobState(job: job)
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
        } catch let error as HDF5Error {
            throw JobRunError("\(path): cannot save the job's state: \(error.message)")
        }
    }

    /// Whether `step` finished with this fingerprint and its outputs are all still there.
    func isUpToDate(_ step: PlannedStep) -> Bool {
        guard let record = steps[step.name], record.fingerprint == step.fingerprint else { return false }
        return step.outputs.allSatisfy { FileManager.default.fileExists(atPath: $0) }
    }
}

/// A job that could not run to the end.
public struct JobRunError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
