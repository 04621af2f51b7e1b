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

    public static let topLevelKeys = ["name", "description", "output", "metric", "threads", "tags", "inputs", "steps"]

    /// Reads and parses a job file; a YAML syntax error becomes a problem with its line.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw JobValidationError(problems: [JobProblem(file: path, key: "", message: "no such file")])
        }
        var info = stat()
        guard !isDirectory.boolValue, stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw JobValidationError(problems: [JobProblem(file: path, key: "", message: isDirectory.boolValue ? "is a folder, not a job file" : "is not a regular file (a device or FIFO), not a job file")])
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
        case .composer(let context, let problem, let mark, _):
            let detail = context.map { " (\($0.text))" } ?? ""
            return JobProblem(file: file, line: mark.line, column: mark.column, key: "", message: "YAML: \(problem)\(detail)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return JobProblem(file: file, line: context.mark.line, column: context.mark.column, key: "",
                              message: "YAML: repeated key\(duplicates.count > 1 ? "s" : "") \(duplicates.sorted().map { "'\($0)'" }.joined(separator: ", "))")
        case .reader(let problem, _, _, _):
            return JobProblem(file: file, key: "", message: "YAML: \(problem)")
        default:
            let first = "\(error)".split(separator: "\n").first.map(String.init) ?? "unreadable"
            return JobProblem(file: file, key: "", message: "YAML: \(first)")
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
        let name = String(assignment[..<equals])
        guard inputs[name] != nil else {
            let known = inputs.keys.compactMap(\.string)
            throw JobValidationError(problems: [JobProblem(file: path, key: "--input \(name)", message: known.isEmpty
                ? "the job has no named inputs to override" : "the job has no input named '\(name)' (it has \(known.joined(separator: ", ")))")])
        }
        inputs[name] = Node(String(assignment[assignment.index(after: equals)...]))
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
