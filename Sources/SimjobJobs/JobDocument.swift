import Foundation
import Yams

/// A job file as written: the YAML tree with line numbers, before any interpretation.
///
///     name: quickstart                  # optional
///     description: ...                  # optional
///     output: out/quickstart            # folder for every step's outputs and the job's state
///     metric: euclidean                 # default metric of the steps (optional)
///     threads: 2                        # default threads of the steps (optional)
///     inputs:                           # named input files (optional)
///       embeddings: data/vectors.hdf5
///     steps:
///       - name: graph                   # optional; defaults to the step's kind
///         knn_graph: {input: embeddings, k: 10}
public struct JobDocument {
    public let path: String
    public let text: String
    public var root: Node

    public static let topLevelKeys = ["name", "description", "output", "metric", "threads", "inputs", "steps"]

    /// Reads and parses a job file; a YAML syntax error becomes a problem with its line.
    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw JobValidationError(problems: [JobProblem(file: path, key: "", message: "no such file")])
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw JobValidationError(problems: [JobProblem(file: path, key: "", message: "cannot read the file as UTF-8 text")])
        }
        try self.init(path: path, text: text)
    }

    public init(path: String, text: String) throws {
        self.path = path
        self.text = text
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw JobValidationError(problems: [JobProblem(file: path, key: "", message: "the file is empty")])
            }
            root = node
        } catch let error as YamlError {
            throw JobValidationError(problems: [JobDocument.problem(from: error, file: path)])
        }
    }

    static func problem(from error: YamlError, file: String) -> JobProblem {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return JobProblem(file: file, line: mark.line, column: mark.column, key: "", message: "YAML syntax: \(problem)")
        default:
            return JobProblem(file: file, key: "", message: "YAML: \(error)")
        }
    }

    // MARK: overrides from the command line

    /// Applies `--set STEP.KEY=VALUE`: the value is parsed as YAML (`16`, `[1, 4]`, `fast`).
    public mutating func set(_ assignment: String) throws {
        guard let equals = assignment.firstIndex(of: "=") else {
            throw JobValidationError(problems: [JobProblem(file: path, key: assignment, message: "--set takes STEP.KEY=VALUE")])
        }
        let target = String(assignment[..<equals]), valueText = String(assignment[assignment.index(after: equals)...])
        let parts = target.split(separator: ".").map(String.init)
        guard parts.count == 2 else {
            throw JobValidationError(problems: [JobProblem(file: path, key: target, message: "--set takes STEP.KEY=VALUE (for example data.n=2000)")])
        }
        let value = (try? Yams.compose(yaml: valueText)) ?? nil ?? Node(valueText)
        guard var mapping = root.mapping, var steps = mapping["steps"]?.sequence else {
            throw JobValidationError(problems: [JobProblem(file: path, key: target, message: "the job has no steps to set")])
        }
        for index in steps.indices {
            guard var step = steps[index].mapping, JobDocument.stepName(step) == parts[0], let kind = JobDocument.stepKind(step),
                  var options = step[kind]?.mapping ?? Node.Mapping([]) as Node.Mapping? else { continue }
            options[parts[1]] = value
            step[kind] = .mapping(options)
            steps[index] = .mapping(step)
            mapping["steps"] = .sequence(steps)
            root = .mapping(mapping)
            return
        }
        throw JobValidationError(problems: [JobProblem(file: path, key: target, message: "no step named '\(parts[0])'")])
    }

    /// Applies `--input NAME=PATH`, replacing or adding a named input.
    public mutating func setInput(_ assignment: String) throws {
        guard let equals = assignment.firstIndex(of: "="), var mapping = root.mapping else {
            throw JobValidationError(problems: [JobProblem(file: path, key: assignment, message: "--input takes NAME=PATH")])
        }
        var inputs = mapping["inputs"]?.mapping ?? Node.Mapping([])
        inputs[String(assignment[..<equals])] = Node(String(assignment[assignment.index(after: equals)...]))
        mapping["inputs"] = .mapping(inputs)
        root = .mapping(mapping)
    }

    /// Applies `--output DIR`.
    public mutating func setOutput(_ folder: String) {
        guard var mapping = root.mapping else { return }
        mapping["output"] = Node(folder)
        root = .mapping(mapping)
    }

    // MARK: helpers

    static func stepName(_ step: Node.Mapping) -> String? {
        step["name"]?.string ?? stepKind(step)
    }

    static func stepKind(_ step: Node.Mapping) -> String? {
        step.keys.compactMap(\.string).first { StepKind(rawValue: $0) != nil }
    }
}
