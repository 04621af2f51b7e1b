import Foundation
import SimjobAlgorithms
import SimjobOperations
import SimjobHDF5
import SimjobKernels
import Yams

/// One step of a validated job.
public struct PlannedStep: Sendable {
    public var index: Int
    public var name: String
    public var kind: StepKind
    /// What the step will do, with every reference resolved to a file.
    public var action: any StepAction
    /// The step's main output file.
    public var output: String
    /// Every file or folder the step writes (main output first).
    public var outputs: [String]
    /// Fingerprint of the step's settings, its inputs and every step before it: a finished step
    /// with the same fingerprint is up to date.
    public var fingerprint: String
}

/// A validated job, ready to run.
public struct JobPlan: Sendable {
    public var name: String
    public var file: String
    public var outputFolder: String
    public var steps: [PlannedStep]
    /// Tags stamped into every artifact the job builds (top-level `tags`), beside the input
    /// files' own.
    public var tags: [String: String] = [:]
}

/// What is known of a dataset file before the job runs (from the file, or from the step that
/// will write it): dataset shapes, and the metric it records.
struct DataInfo {
    var datasets: [String: [Int]] = [:]
    var metric: Metric?
    /// For an index: how many vectors, of which dimension.
    var indexed: (count: Int?, dimension: Int)?

    func rows(_ dataset: String) -> Int? { datasets[dataset].flatMap { $0.first.flatMap { $0 >= 0 ? $0 : nil } } }
    func dimension(_ dataset: String) -> Int? { datasets[dataset].flatMap { $0.count == 2 ? $0[1] : nil } }
}

/// Turns a job document into a plan, collecting every problem with its line before any work.
public struct JobPlanner {
    let document: JobDocument
    var problems: [JobProblem] = []
    /// The job's `tags`, part of the fingerprint of every step that stamps an artifact.
    var jobTags: [String: String] = [:]

    public init(document: JobDocument) {
        self.document = document
    }

    /// Validates the whole job; throws `JobValidationError` listing every problem found.
    public static func plan(_ document: JobDocument) throws -> JobPlan {
        var planner = JobPlanner(document: document)
        let plan = planner.build()
        if !planner.problems.isEmpty { throw JobValidationError(problems: planner.problems) }
        return plan!
    }

    /// Records a problem; one per key (the first found says what is wrong with it).
    mutating func problem(_ node: Node?, _ key: String, _ message: String) {
        if !key.isEmpty, key.contains("."), problems.contains(where: { $0.key == key }) { return }
        problems.append(JobProblem(file: document.path, line: node?.mark?.line, column: node?.mark?.column, key: key, message: message))
    }

    static func suggestion(_ key: String, among keys: [String]) -> String {
        func distance(_ a: String, _ b: String) -> Int {
            let a = Array(a), b = Array(b)
            var previous = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var current = [i] + [Int](repeating: 0, count: b.count)
                for j in 1...max(b.count, 1) where !b.isEmpty {
                    current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                previous = current
            }
            return previous[b.count]
        }
        guard let best = keys.min(by: { distance(key, $0) < distance(key, $1) }), distance(key, best) <= 2 else { return "" }
        return " (did you mean '\(best)'?)"
    }

    // MARK: building

    mutating func build() -> JobPlan? {
        guard let root = document.root.mapping else {
            problem(document.root, "", "a job file is a mapping with output and steps")
            return nil
        }
        for pair in root where !JobDocument.topLevelKeys.contains(pair.key.string ?? "") {
            let key = pair.key.string ?? "?"
            problem(pair.key, key, "unknown key" + JobPlanner.suggestion(key, among: JobDocument.topLevelKeys) + "; a job has \(JobDocument.topLevelKeys.joined(separator: ", "))")
        }
        for key in ["name", "description"] {
            if let node = root[key], node.string == nil { problem(node, key, "must be text") }
        }
        let name = root["name"]?.string ?? URL(fileURLWithPath: document.path).deletingPathExtension().lastPathComponent
        var outputFolder = ""
        if let output = root["output"] {
            if let text = output.string, !text.isEmpty { outputFolder = text } else { problem(output, "output", "must be a folder path") }
            var isDirectory: ObjCBool = false
            if !outputFolder.isEmpty, FileManager.default.fileExists(atPath: outputFolder, isDirectory: &isDirectory), !isDirectory.boolValue {
                problem(output, "output", "\(outputFolder) is a file; the job's outputs need a folder")
            }
        } else {
            problem(document.root, "output", "missing: the folder for the job's outputs and state")
        }
        var jobMetric: Metric?
        if let node = root["metric"] {
            if let text = node.string, let metric = Metric(name: text) { jobMetric = metric } else { problem(node, "metric", "must be euclidean, angular or ip") }
        }
        var jobThreads: Int?
        if let node = root["threads"], node.null == nil {
            if let value = node.int, value >= 1 { jobThreads = value } else { problem(node, "threads", "must be a whole number of at least 1") }
        }
        var tags: [String: String] = [:]
        if let node = root["tags"], node.null == nil {
            if let mapping = node.mapping {
                for pair in mapping {
                    guard let key = pair.key.string, let value = pair.value.string else { problem(pair.key, "tags", "each tag is KEY: VALUE text"); continue }
                    do { _ = try Provenance.parseTag("\(key)=\(value)", what: "tag") } catch let error as SimjobError { problem(pair.key, "tags", error.message) } catch {}
                    tags[key] = value
                }
            } else {
                problem(node, "tags", "must be a mapping of KEY: VALUE")
            }
        }
        jobTags = tags
        var namedInputs: [String: String] = [:]
        if let node = root["inputs"] {
            if let inputs = node.mapping {
                for pair in inputs {
                    if let key = pair.key.string, let value = pair.value.string { namedInputs[key] = value } else { problem(pair.key, "inputs", "each input is NAME: PATH") }
                }
            } else {
                problem(node, "inputs", "must be a mapping of NAME: PATH")
            }
        }
        guard let stepsNode = root["steps"] else {
            problem(document.root, "steps", "missing: the list of steps")
            return nil
        }
        guard let steps = stepsNode.sequence, !steps.isEmpty else {
            problem(stepsNode, "steps", "must be a non-empty list of steps")
            return nil
        }

        var context = ResolutionContext(namedInputs: namedInputs, outputFolder: outputFolder)
        context.laterSteps = Set(steps.compactMap { $0.mapping.flatMap(JobDocument.stepName) })
        var planned: [PlannedStep] = []
        for (index, stepNode) in steps.enumerated() {
            if let name = stepNode.mapping.flatMap(JobDocument.stepName) { context.laterSteps.remove(name) }
            // A step's fingerprint covers its settings and what it reads (the fingerprints of the
            // steps it names, the identity of files it reads), not unrelated earlier steps.
            if let step = planStep(stepNode, index: index, context: &context, jobMetric: jobMetric, jobThreads: jobThreads) {
                context.fingerprints[step.name] = step.fingerprint
                planned.append(step)
            }
        }
        checkOutputs(planned, steps: Array(steps), context: context)
        return JobPlan(name: name, file: document.path, outputFolder: outputFolder, steps: planned, tags: tags)
    }

    /// What earlier steps and named inputs make available.
    struct ResolutionContext {
        var namedInputs: [String: String]
        var outputFolder: String
        var stepNames: [String] = []
        var outputs: [String: String] = [:]          // "step" or "step.kept" -> path
        var infos: [String: DataInfo] = [:]          // path -> what is known of it
        var fingerprints: [String: String] = [:]     // step name -> fingerprint
        var producers: [String: String] = [:]        // path -> step name
        var laterSteps: Set<String> = []
        /// Files steps read by path (not by naming the step that writes them): step index, path, node.
        var fileReads: [(step: Int, path: String, node: Node)] = []
    }

    /// A path in a form two spellings of one file share: absolute, `.`/`..` removed, the folder's
    /// symlinks resolved where it exists.
    static func normalized(_ path: String) -> String {
        if let output = try? OutputPath(path) { return output.resolved }
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// Rejects two steps writing one file, and a step reading a file that it or a later step writes.
    mutating func checkOutputs(_ planned: [PlannedStep], steps: [Node], context: ResolutionContext) {
        var writers: [String: PlannedStep] = [:]
        for step in planned {
            for output in step.outputs {
                let key = JobPlanner.normalized(output)
                if let other = writers[key] {
                    problem(steps[step.index].mapping?["name"] ?? steps[step.index], "steps[\(step.index)] (\(step.name))",
                            "writes \(output), which step '\(other.name)' also writes; give the steps names whose outputs differ")
                } else {
                    writers[key] = step
                }
            }
        }
        for read in context.fileReads {
            guard let writer = writers[JobPlanner.normalized(DatasetReference(parsing: read.path, defaultDataset: "").path)] else { continue }
            let reader = planned.first { $0.index == read.step }
            if writer.index == read.step {
                problem(read.node, "steps[\(read.step)] (\(writer.name))", "reads \(read.path), its own output: the step would overwrite its input")
            } else if writer.index > read.step {
                problem(read.node, "steps[\(read.step)] (\(reader?.name ?? "?"))",
                        "reads \(read.path), which the later step '\(writer.name)' overwrites; read another file or refer to an earlier step")
            }
        }
    }

    mutating func planStep(_ node: Node, index: Int, context: inout ResolutionContext, jobMetric: Metric?, jobThreads: Int?) -> PlannedStep? {
        let place = "steps[\(index)]"
        guard let step = node.mapping else {
            problem(node, place, "a step is a mapping: name and one of \(StepKind.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        let kinds = Array(step.keys.compactMap(\.string).filter { StepKind(rawValue: $0) != nil })
        for pair in step {
            let key = pair.key.string ?? "?"
            if key != "name" && StepKind(rawValue: key) == nil {
                problem(pair.key, "\(place).\(key)", "unknown key" + JobPlanner.suggestion(key, among: ["name"] + StepKind.allCases.map(\.rawValue))
                        + "; a step holds name and one of \(StepKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        guard kinds.count == 1, let kind = StepKind(rawValue: kinds[0]) else {
            problem(node, place, kinds.isEmpty ? "no step kind: give one of \(StepKind.allCases.map(\.rawValue).joined(separator: ", "))" : "one kind per step, found \(kinds.joined(separator: " and "))")
            return nil
        }
        let name = step["name"]?.string ?? kind.rawValue
        let label = "\(place) (\(name)).\(kind.rawValue)"
        if context.stepNames.contains(name) {
            problem(step["name"] ?? node, "\(place).name", "a step named '\(name)' comes earlier; give each step its own name")
        }
        if context.namedInputs[name] != nil {
            problem(step["name"] ?? node, "\(place).name", "'\(name)' is also a named input; a reference to it would be ambiguous: rename one")
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            problem(step["name"], "\(place).name", "use letters, digits, '_' and '-' only, at least one (it names the output file)")
            return nil
        }
        // Registered before any check, so later steps can refer to this one even when it has
        // problems of its own (one mistake should not cascade into many reports).
        let output = context.outputFolder + "/" + name + ".hdf5"
        context.outputs[name] = output
        context.producers[output] = name
        if kind == .dedup, step[kind.rawValue]?.mapping?["write_kept"]?.bool == true {
            let kept = DedupStep.keptPath(folder: context.outputFolder, name: name)
            context.outputs[name + ".kept"] = kept
            context.producers[kept] = name
        }
        let optionsNode = step[kind.rawValue] ?? Node.mapping([:])
        let options: Node.Mapping
        if let mapping = optionsNode.mapping { options = mapping } else if optionsNode.null != nil { options = Node.Mapping([]) } else {
            problem(optionsNode, label, "the step's options must be a mapping")
            return nil
        }
        checkKeys(options, kind: kind, label: label)

        var planning = StepPlanning(
            file: document.path, index: index, name: name, label: label, settingsKeys: kind.settingsKeys, options: options,
            optionsNode: optionsNode, output: output, jobMetric: jobMetric, jobThreads: jobThreads, context: context, outputs: [output])
        let planned = kind.definition.plan(&planning)
        context = planning.context
        for found in planning.problems where !problems.contains(where: { $0.key == found.key }) { problems.append(found) }
        guard let action = planned else { return nil }
        context.stepNames.append(name)
        context.infos[output] = planning.info
        // Paths inside the job's own folder count relative to it: another spelling of the folder
        // (a symlink, an absolute path) is the same job.
        let description = context.outputFolder.isEmpty ? action.settingsDescription
            : action.settingsDescription.replacingOccurrences(of: context.outputFolder + "/", with: "$OUTPUT/")
        // Tags change the artifacts' provenance, so they rerun the steps that build artifacts.
        let stamps = [.train, .knnGraph, .dedup].contains(kind) && !jobTags.isEmpty
        let tagText = stamps ? ["tags " + jobTags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")] : []
        let fingerprint = Fingerprint.hash([kind.rawValue, name, description] + tagText + planning.dependencies)
        return PlannedStep(index: index, name: name, kind: kind, action: action, output: output, outputs: planning.outputs, fingerprint: fingerprint)
    }

    /// Unknown keys, and numeric keys outside the bounds the command line has for the same option.
    mutating func checkKeys(_ options: Node.Mapping, kind: StepKind, label: String) {
        for pair in options {
            let key = pair.key.string ?? "?"
            if !kind.allKeys.contains(key) {
                problem(pair.key, "\(label).\(key)", "unknown key" + JobPlanner.suggestion(key, among: kind.allKeys) + "; \(kind.rawValue) takes \(kind.allKeys.joined(separator: ", "))")
            }
        }
        for pair in options {
            guard let key = pair.key.string else { continue }
            let values = pair.value.sequence.map(Array.init) ?? [pair.value]
            for value in values {
                guard value.scalar != nil, let number = value.float ?? value.int.map(Double.init) else { continue }
                if let message = OptionBounds.problem(number, option: key, command: kind.rawValue, text: value.string) {
                    problem(value, "\(label).\(key)", message)
                }
            }
        }
    }

    /// The key and a readable message of a decoding error.
    static func describe(_ error: DecodingError) -> (String, String) {
        func key(_ path: [CodingKey]) -> String { path.first?.stringValue ?? "" }
        switch error {
        case .typeMismatch(let type, let context):
            return (key(context.codingPath), "expected \(readable(type))" + (context.debugDescription.isEmpty ? "" : ""))
        case .valueNotFound(let type, let context):
            return (key(context.codingPath), "expected \(readable(type)), found nothing")
        case .keyNotFound(let codingKey, _):
            return (codingKey.stringValue, "missing")
        case .dataCorrupted(let context):
            let detail = context.debugDescription
            let name = key(context.codingPath)
            // "Cannot initialize Keep from invalid String value last": say what is accepted.
            if let range = detail.range(of: "invalid String value ") {
                let given = detail[range.upperBound...]
                let accepted: [String: [String]] = [
                    "metric": Metric.allCases.map(\.rawValue), "mode": DedupConfig.Mode.allCases.map(\.rawValue),
                    "keep": DedupConfig.Keep.allCases.map(\.rawValue), "initialization": KMeansConfig.Initialization.allCases.map(\.rawValue),
                ]
                if let values = accepted[name] { return (name, "must be one of \(values.joined(separator: ", ")) (got \(given))") }
                return (name, "not an accepted value (got \(given))")
            }
            return (name, detail.contains("Cannot initialize") || detail.contains("invalid") ? "not an accepted value: \(detail)" : detail)
        @unknown default:
            return ("", "\(error)")
        }
    }

    static func readable(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type, is UInt64.Type: return "a whole number"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "text"
        case is Node.Scalar.Type: return "a single value (not a list or a mapping)"
        default: return "\(type)"
        }
    }

    /// Shapes and metric of an existing HDF5 file (empty when it cannot be read now).
    static func inspect(_ path: String) -> DataInfo {
        var info = DataInfo()
        guard let file = try? HDF5File.open(path, registerInput: false) else { return info }
        for name in file.datasetPaths() {
            if let dataset = try? file.dataset(name) { info.datasets[name] = dataset.shape }
        }
        info.metric = (try? file.attribute("distance"))??.stringValue.flatMap { Metric(name: $0) }
        if file.exists("index"), let count = (try? file.attribute("count", of: "index"))??.intValue,
           let dimension = (try? file.attribute("dimension", of: "index"))??.intValue {
            info.indexed = (Int(count), Int(dimension))
        }
        return info
    }
}

/// Stable fingerprints (FNV-1a, 64 bits) of step descriptions.
enum Fingerprint {
    static func hash(_ parts: [String]) -> String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in parts.joined(separator: "\u{1F}").utf8 {
            value ^= UInt64(byte)
            value = value &* 0x100_0000_01b3
        }
        return String(format: "%016llx", value)
    }

    /// An external file's identity: path, size and modification time.
    static func fileIdentity(_ path: String) -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let size = attributes?[.size] as? Int ?? -1
        let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(path)|\(size)|\(modified)"
    }
}
