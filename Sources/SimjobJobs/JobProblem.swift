import Foundation

/// One thing wrong with a job file, located by line, column and key path.
public struct JobProblem: Sendable, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int?
    public var column: Int?
    /// Where in the job: `steps[2] (index).train.m`.
    public var key: String
    public var message: String

    public var description: String {
        let place = line.map { "\(file):\($0):\(column ?? 1)" } ?? file
        return "\(place): \(key.isEmpty ? "" : key + ": ")\(message)"
    }
}

/// Every problem found in a job file, reported together.
public struct JobValidationError: Error, CustomStringConvertible, Sendable {
    public var problems: [JobProblem]
    public var description: String {
        // One problem fits the one line of every error; several are listed, one per line.
        problems.count == 1 ? problems[0].description
            : "\(problems.count) problems in the job file:\n" + problems.map { "  " + $0.description }.joined(separator: "\n")
    }
}
