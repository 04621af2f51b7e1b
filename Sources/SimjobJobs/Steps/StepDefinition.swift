import Foundation
import SimjobAlgorithms
import SimjobOperations
import SimjobHDF5
import SimjobKernels
import Yams

/// One kind of job step: its keys, its defaults, how it is planned and how it runs.
///
/// Each kind is one conformer in its own file under `Steps/`; `StepKind` lists them. Adding a
/// kind is a new file and its line in `StepKind`.
protocol StepDefinition {
    /// Keys of the step itself (which files it works on), besides its settings struct's keys.
    static var ownKeys: [(key: String, help: String, example: String)] { get }
    /// The settings struct's keys (decoded with the struct's `Codable`).
    static var settingsKeys: [String] { get }
    /// What the step does, for `simjob schema`.
    static var summary: String { get }
    /// Default settings, encoded, for `simjob schema`.
    static var defaultSettings: Encodable { get }
    /// Resolves the step's references, decodes and checks its settings, records what its output
    /// will hold (`planning.info`) and any further outputs; nil when a problem stops planning.
    static func plan(_ planning: inout StepPlanning) -> (any StepAction)?
}

/// What a planned step does: the settings it was planned with (for its fingerprint) and how it
/// runs through the same operations as the commands.
public protocol StepAction: Sendable {
    /// A canonical text of the settings and resolved inputs; part of the step's fingerprint.
    var settingsDescription: String { get }
    /// Runs the step; returns its one-line summary.
    func run(_ step: PlannedStep, runner: JobRunner) throws -> String
}

/// Canonical JSON (sorted keys) of settings, for fingerprints.
func canonicalJSON<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
}

/// The planning of one step: its options, what earlier steps and inputs provide, and the
/// helpers every kind uses to read keys, resolve references and report problems with their lines.
struct StepPlanning {
    let file: String
    let index: Int
    let name: String
    let label: String
    let settingsKeys: [String]
    let options: Node.Mapping
    let optionsNode: Node
    let output: String
    let jobMetric: Metric?
    let jobThreads: Int?
    var context: JobPlanner.ResolutionContext
    var problems: [JobProblem] = []
    /// Every file or folder the step writes (main output first).
    var outputs: [String]
    /// What the step's main output will hold, for later steps' checks.
    var info = DataInfo()
    /// What the step depends on (earlier steps' fingerprints, input files' identities).
    var dependencies: [String] = []

    var hasMetric: Bool { options["metric"] != nil }
    var hasThreads: Bool { options["threads"] != nil }
    var outputFolder: String { context.outputFolder }

    mutating func problem(_ node: Node?, _ key: String, _ message: String) {
        if problems.contains(where: { $0.key == key }) { return }
        problems.append(JobProblem(file: file, line: node?.mark?.line, column: node?.mark?.column, key: key, message: message))
    }

    /// The node of a key inside the options (to point at the key's own line).
    func keyNode(_ key: String) -> Node? {
        options.first { $0.key.string == key }?.key
    }

    /// Reports `message` at `key` unless `condition` holds.
    mutating func check(_ condition: Bool, _ key: String, _ message: @autoclosure () -> String) {
        if !condition { problem(keyNode(key) ?? optionsNode, "\(label).\(key)", message()) }
    }

    /// The settings struct, decoded from the settings keys only; every key that is wrong on its
    /// own is reported, not only the first the decoder met.
    mutating func decode<T: JobSettings>(_ type: T.Type) -> T? {
        let keys = settingsKeys
        let given = Node.Mapping(options.filter { keys.contains($0.key.string ?? "") }.map { ($0.key, $0.value) })
        do {
            return try SettingsOverlay.decode(T.self, from: given)
        } catch let error as DecodingError {
            for pair in given {
                do { _ = try SettingsOverlay.decode(T.self, from: Node.Mapping([(pair.key, pair.value)])) } catch let error as DecodingError {
                    report(error)
                } catch {}
            }
            report(error)
        } catch {
            problem(optionsNode, label, "\(error)")
        }
        return nil
    }

    private mutating func report(_ error: DecodingError) {
        let (key, message) = JobPlanner.describe(error)
        problem(options[key].flatMap { _ in keyNode(key) } ?? optionsNode, "\(label).\(key)", message)
    }

    /// A text key (nil when given as null; `fallback` when absent or not text).
    mutating func string(_ key: String, default fallback: String?) -> String? {
        guard let value = options[key] else { return fallback }
        if value.null != nil { return nil }
        guard let text = value.string else {
            problem(keyNode(key), "\(label).\(key)", "must be text")
            return fallback
        }
        return text
    }

    /// A true/false key (false when absent).
    mutating func bool(_ key: String) -> Bool {
        guard let value = options[key] else { return false }
        guard let flag = value.bool else {
            problem(keyNode(key), "\(label).\(key)", "must be true or false")
            return false
        }
        return flag
    }

    /// Resolves an input reference at `key` (an earlier step, a named input or a file); records
    /// what the step depends on.
    mutating func reference(_ key: String, required: Bool = true, fallback: String? = nil) -> (path: String, info: DataInfo?)? {
        guard let text = string(key, default: fallback) else {
            if required { problem(optionsNode, "\(label).\(key)", "missing: name a step, a named input or a file") }
            return nil
        }
        return resolve(text, key: key, node: keyNode(key) ?? optionsNode)
    }

    /// Input references at `key`: one, or a list of them (`index: [ivfpq, hnsw]`).
    mutating func references(_ key: String) -> [(path: String, info: DataInfo?)]? {
        guard let items = options[key]?.sequence else { return reference(key).map { [$0] } }
        let node = keyNode(key) ?? optionsNode
        guard !items.isEmpty else {
            problem(node, "\(label).\(key)", "an empty list: name at least one step, named input or file")
            return nil
        }
        var resolved: [(path: String, info: DataInfo?)] = []
        for item in items {
            guard let text = item.string else {
                problem(node, "\(label).\(key)", "every entry must be text: a step, a named input or a file")
                return nil
            }
            guard let one = resolve(text, key: key, node: node) else { return nil }
            resolved.append(one)
        }
        return resolved
    }

    /// Resolves one reference's text (an earlier step, a named input or a file).
    private mutating func resolve(_ text: String, key: String, node: Node) -> (path: String, info: DataInfo?)? {
        if text == name || text == name + ".kept" {
            problem(node, "\(label).\(key)", "'\(text)' is this step's own output: a step cannot read what it writes")
            return nil
        }
        if let path = context.outputs[text] {
            dependencies.append(context.fingerprints[context.producers[path] ?? ""] ?? path)
            return (path, context.infos[path])
        }
        if context.laterSteps.contains(text) {
            problem(node, "\(label).\(key)", "step '\(text)' comes later; a step can only use earlier steps' outputs")
            return nil
        }
        let path = context.namedInputs[text] ?? text
        let file = DatasetReference(parsing: path, defaultDataset: "").path
        guard FileManager.default.fileExists(atPath: file) else {
            if context.namedInputs[text] != nil {
                problem(node, "\(label).\(key)", "named input '\(text)' is \(file), which does not exist (pass --input \(text)=PATH)")
            } else {
                problem(node, "\(label).\(key)", "'\(text)' is neither an earlier step, a named input nor an existing file")
            }
            return nil
        }
        dependencies.append(Fingerprint.fileIdentity(file))
        context.fileReads.append((index, path, node))
        if context.infos[file] == nil { context.infos[file] = JobPlanner.inspect(file) }
        return (path, context.infos[file])
    }

    /// The dataset a resolved reference names (`dataset` key, else `FILE:DATASET`, else the
    /// default), checked against what is known of the file.
    mutating func datasetReference(_ resolved: (path: String, info: DataInfo?), dataset: String, key: String) -> DatasetReference {
        var reference = DatasetReference(parsing: resolved.path, defaultDataset: dataset)
        if options["dataset"] != nil { reference.dataset = dataset }
        if let info = resolved.info, !info.datasets.isEmpty, info.datasets[reference.dataset] == nil {
            problem(keyNode("dataset") ?? keyNode(key) ?? optionsNode, "\(label).dataset",
                    "\(reference.path) has no dataset '\(reference.dataset)' (it has \(info.datasets.keys.sorted().joined(separator: ", ")))")
        }
        return reference
    }

    /// `dataset` key with a default.
    mutating func datasetName(default fallback: String) -> String {
        string("dataset", default: fallback) ?? fallback
    }

    /// The step's metric and threads: its own keys, else the job's.
    func withJobDefaults(metric: Metric?, threads: Int?) -> (metric: Metric?, threads: Int?) {
        (hasMetric ? metric : metric ?? jobMetric, hasThreads ? threads : jobThreads)
    }
}

/// Settings decoded by their struct's synthesized `Codable`, with the job's keys laid over the
/// encoded defaults: an absent key takes the documented default, and a single value given for
/// a list key (`nprobe: 16`) is a list of one.
enum SettingsOverlay {
    static func decode<T: JobSettings>(_ type: T.Type, from given: Node.Mapping) throws -> T {
        var merged = try defaults(of: T.self)
        for (key, value) in given {
            let isList = key.string.flatMap { merged[Node($0)] }?.sequence != nil
            merged[key] = isList && value.sequence == nil && value.null == nil ? Node.sequence(Node.Sequence([value])) : value
        }
        return try YAMLDecoder().decode(T.self, from: Node.mapping(merged))
    }

    /// The defaults of `T` as a YAML mapping (optional fields that default to nil are absent).
    static func defaults<T: JobSettings>(of type: T.Type) throws -> Node.Mapping {
        try Yams.compose(yaml: YAMLEncoder().encode(T.jobDefaults))?.mapping ?? Node.Mapping([])
    }
}
