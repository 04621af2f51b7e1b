import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobKernels
import Yams

/// What a step will do, with every reference resolved to a file.
public enum StepAction: Sendable {
    case generate(SyntheticConfig)
    case groundtruth(input: String, config: ExactKNNConfig)
    case knnGraph(input: DatasetReference, config: ExactKNNConfig)
    case approxKNNGraph(input: DatasetReference, config: ApproxKNNConfig)
    case train(input: DatasetReference, config: IVFPQConfig)
    case search(index: String, queries: DatasetReference, base: DatasetReference?, config: IVFPQSearchConfig)
    case evaluate(input: String, index: String, config: EvaluationConfig, annBenchmarksResults: Bool)
    case evaluateGraph(graph: String, truth: String?, sample: Int?, threads: Int?)
    case dedup(input: DatasetReference, config: DedupConfig, writePairs: Bool, writeKept: Bool)
}

/// One step of a validated job.
public struct PlannedStep: Sendable {
    public var index: Int
    public var name: String
    public var kind: StepKind
    public var action: StepAction
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

    /// The node of a key inside a mapping (to point at the key's own line).
    func keyNode(_ mapping: Node.Mapping, _ key: String) -> Node? {
        mapping.first { $0.key.string == key }?.key
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
        var previousFingerprint = "job"
        for (index, stepNode) in steps.enumerated() {
            if let name = stepNode.mapping.flatMap(JobDocument.stepName) { context.laterSteps.remove(name) }
            if var step = planStep(stepNode, index: index, context: &context, jobMetric: jobMetric, jobThreads: jobThreads) {
                step.fingerprint = Fingerprint.hash([previousFingerprint, step.fingerprint])
                previousFingerprint = step.fingerprint
                context.fingerprints[step.name] = step.fingerprint
                planned.append(step)
            }
        }
        checkOutputs(planned, steps: Array(steps), context: context)
        return JobPlan(name: name, file: document.path, outputFolder: outputFolder, steps: planned)
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
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            problem(step["name"], "\(place).name", "use letters, digits, '_' and '-' only (it names the output file)")
            return nil
        }
        // Registered before any check, so later steps can refer to this one even when it has
        // problems of its own (one mistake should not cascade into many reports).
        let output = context.outputFolder + "/" + name + ".hdf5"
        context.outputs[name] = output
        context.producers[output] = name
        if kind == .dedup, step[kind.rawValue]?.mapping?["write_kept"]?.bool == true {
            let kept = context.outputFolder + "/" + name + "-kept.hdf5"
            context.outputs[name + ".kept"] = kept
            context.producers[kept] = name
        }
        let optionsNode = step[kind.rawValue] ?? Node.mapping([:])
        let options: Node.Mapping
        if let mapping = optionsNode.mapping { options = mapping } else if optionsNode.null != nil { options = Node.Mapping([]) } else {
            problem(optionsNode, label, "the step's options must be a mapping")
            return nil
        }
        for pair in options {
            let key = pair.key.string ?? "?"
            if !kind.allKeys.contains(key) {
                problem(pair.key, "\(label).\(key)", "unknown key" + JobPlanner.suggestion(key, among: kind.allKeys) + "; \(kind.rawValue) takes \(kind.allKeys.joined(separator: ", "))")
            }
        }

        // Numeric keys within the bounds the command line has for the same option.
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

        // The settings struct, decoded from the settings keys only.
        let settingsNode = Node.mapping(Node.Mapping(options.filter { kind.settingsKeys.contains($0.key.string ?? "") }.map { ($0.key, $0.value) }))
        func decode<T: Decodable>(_ type: T.Type) -> T? {
            do {
                return try YAMLDecoder().decode(T.self, from: settingsNode)
            } catch let error as DecodingError {
                // Every key that is wrong on its own, not only the first the decoder met.
                for pair in options where kind.settingsKeys.contains(pair.key.string ?? "") {
                    let single = Node.mapping(Node.Mapping([(pair.key, pair.value)]))
                    do { _ = try YAMLDecoder().decode(T.self, from: single) } catch let error as DecodingError {
                        if case .keyNotFound = error { continue }
                        let (key, message) = JobPlanner.describe(error)
                        problem(options[key].flatMap { _ in keyNode(options, key) } ?? optionsNode, "\(label).\(key)", message)
                    } catch {}
                }
                let (key, message) = JobPlanner.describe(error)
                problem(options[key].flatMap { _ in keyNode(options, key) } ?? optionsNode, "\(label).\(key)", message)
            } catch {
                problem(optionsNode, label, "\(error)")
            }
            return nil
        }
        func string(_ key: String, default fallback: String?) -> String? {
            guard let value = options[key] else { return fallback }
            if value.null != nil { return nil }
            guard let text = value.string else {
                problem(keyNode(options, key), "\(label).\(key)", "must be text")
                return fallback
            }
            return text
        }
        func bool(_ key: String) -> Bool {
            guard let value = options[key] else { return false }
            guard let flag = value.bool else {
                problem(keyNode(options, key), "\(label).\(key)", "must be true or false")
                return false
            }
            return flag
        }
        let hasMetric = options["metric"] != nil, hasThreads = options["threads"] != nil

        // Resolves an input reference at `key`; records what the step depends on.
        var dependencies: [String] = []
        func reference(_ key: String, required: Bool = true, fallback: String? = nil) -> (path: String, info: DataInfo?)? {
            guard let text = string(key, default: fallback) else {
                if required { problem(optionsNode, "\(label).\(key)", "missing: name a step, a named input or a file") }
                return nil
            }
            let node = keyNode(options, key) ?? optionsNode
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
        func datasetReference(_ resolved: (path: String, info: DataInfo?), dataset: String, key: String) -> DatasetReference {
            var reference = DatasetReference(parsing: resolved.path, defaultDataset: dataset)
            if options["dataset"] != nil { reference.dataset = dataset }
            if let info = resolved.info, !info.datasets.isEmpty, info.datasets[reference.dataset] == nil {
                problem(keyNode(options, "dataset") ?? keyNode(options, key) ?? optionsNode, "\(label).dataset",
                        "\(reference.path) has no dataset '\(reference.dataset)' (it has \(info.datasets.keys.sorted().joined(separator: ", ")))")
            }
            return reference
        }
        func check(_ condition: Bool, _ key: String, _ message: @autoclosure () -> String) {
            if !condition { problem(keyNode(options, key) ?? optionsNode, "\(label).\(key)", message()) }
        }

        var outputs = [output]
        var info = DataInfo()
        let action: StepAction
        switch kind {
        case .generate:
            guard var config = decode(SyntheticConfig.self) else { return nil }
            if !hasMetric, let jobMetric { config.metric = jobMetric }
            check(config.n >= 1, "n", "must be at least 1")
            check(config.dim >= 1, "dim", "must be at least 1")
            check(config.latentDim >= 0 && config.latentDim <= config.dim, "latent_dim", "must be between 0 and dim = \(config.dim)")
            check((0...0.5).contains(config.duplicates), "duplicates", "must be a fraction between 0 and 0.5")
            info.datasets = ["train": [config.n, config.dim], "test": [config.queries, config.dim]]
            if config.groundTruthK > 0 && config.queries > 0 {
                let k = min(config.groundTruthK, config.n)
                info.datasets["neighbors"] = [config.queries, k]
                info.datasets["distances"] = [config.queries, k]
            }
            if config.duplicates > 0 { info.datasets["dup_group"] = [config.n] }
            info.metric = config.metric
            action = .generate(config)
        case .groundtruth:
            let input = reference("input"), settings = decode(ExactKNNConfig.self)
            guard let resolved = input, var config = settings else { return nil }
            if !hasMetric { config.metric = config.metric ?? jobMetric }
            if !hasThreads { config.threads = jobThreads }
            if let rows = resolved.info?.rows("train") { check(config.k >= 1 && config.k <= rows, "k", "k = \(config.k) must be between 1 and the \(rows) rows of train") }
            if let known = resolved.info, !known.datasets.isEmpty, known.datasets["test"] == nil {
                problem(keyNode(options, "input"), "\(label).input", "\(resolved.path) has no test dataset")
            }
            info = resolved.info ?? DataInfo()
            if let queries = info.rows("test") { info.datasets["neighbors"] = [queries, config.k]; info.datasets["distances"] = [queries, config.k] }
            action = .groundtruth(input: resolved.path, config: config)
        case .knnGraph:
            let method = string("method", default: "exact") ?? "exact"
            let input = reference("input"), settings = decode(ExactKNNConfig.self), approxSettings = decode(ApproxKNNConfig.self)
            guard let resolved = input, var config = settings, var approx = approxSettings else { return nil }
            if !hasMetric { config.metric = config.metric ?? jobMetric; approx.metric = approx.metric ?? jobMetric }
            if !hasThreads { config.threads = jobThreads; approx.threads = jobThreads }
            let dataset = datasetReference(resolved, dataset: string("dataset", default: "train") ?? "train", key: "input")
            check(method == "exact" || method == "approx", "method", "must be exact or approx")
            let approxOnly = ApproxKNNConfig.jobKeys.filter { !ExactKNNConfig.jobKeys.contains($0) }
            let exactOnly = ExactKNNConfig.jobKeys.filter { !ApproxKNNConfig.jobKeys.contains($0) }
            for key in method == "approx" ? exactOnly : approxOnly where options[key] != nil {
                problem(keyNode(options, key), "\(label).\(key)", "applies to method \(method == "approx" ? "exact" : "approx") only")
            }
            if let rows = resolved.info?.rows(dataset.dataset) {
                check(config.k >= 1 && config.k <= rows - 1, "k", "k = \(config.k) must be between 1 and n - 1 = \(rows - 1) (a row is not its own neighbour)")
            }
            check(approx.nprobe >= 1, "nprobe", "must be at least 1")
            action = method == "approx" ? .approxKNNGraph(input: dataset, config: approx) : .knnGraph(input: dataset, config: config)
        case .train:
            let input = reference("input"), settings = decode(IVFPQConfig.self)
            guard let resolved = input, var config = settings else { return nil }
            if !hasMetric { config.metric = config.metric ?? jobMetric }
            if !hasThreads { config.threads = jobThreads }
            let dataset = datasetReference(resolved, dataset: string("dataset", default: "train") ?? "train", key: "input")
            if let dimension = resolved.info?.dimension(dataset.dataset) {
                check(config.m >= 1 && dimension % config.m == 0, "m", "m = \(config.m) must divide the dimension \(dimension) of \(dataset)")
            }
            if let rows = resolved.info?.rows(dataset.dataset) {
                check(config.nlist >= 1 && config.nlist <= rows, "nlist", "nlist = \(config.nlist) must be between 1 and the \(rows) rows of \(dataset)")
            }
            check((1...8).contains(config.nbits), "nbits", "must be between 1 and 8")
            info.indexed = (resolved.info?.rows(dataset.dataset), resolved.info?.dimension(dataset.dataset) ?? 0)
            info.metric = config.metric ?? resolved.info?.metric
            action = .train(input: dataset, config: config)
        case .search:
            let indexInput = reference("index"), queryInput = reference("input"), settings = decode(IVFPQSearchConfig.self)
            guard let index = indexInput, let queries = queryInput, var config = settings else { return nil }
            if !hasThreads { config.threads = jobThreads }
            let dataset = datasetReference(queries, dataset: string("dataset", default: "test") ?? "test", key: "input")
            let base = reference("base", required: false).map { DatasetReference(parsing: $0.path, defaultDataset: "train") }
            if let count = index.info?.indexed?.count { check(config.k >= 1 && config.k <= count, "k", "k = \(config.k) must be between 1 and the \(count) indexed vectors") }
            check(config.nprobe >= 1, "nprobe", "must be at least 1")
            check(config.refine >= 0, "refine", "must not be negative")
            action = .search(index: index.path, queries: dataset, base: base, config: config)
        case .evaluate where options["graph"] != nil:
            let graph = reference("graph"), truth = reference("truth", required: false)
            var sample: Int?
            if let node = options["sample"], node.null == nil {
                if let value = node.int, value >= 1 { sample = value } else { problem(keyNode(options, "sample"), "\(label).sample", "must be a whole number of at least 1") }
            }
            if truth == nil && sample == nil {
                problem(keyNode(options, "graph"), "\(label).sample", "without truth, give sample: the rows whose exact neighbours are computed")
            }
            for key in ["input", "index", "ann_benchmarks_results"] + EvaluationConfig.jobKeys.filter({ $0 != "threads" }) where options[key] != nil {
                problem(keyNode(options, key), "\(label).\(key)", "does not apply when scoring a graph")
            }
            guard let graph else { return nil }
            var threads = jobThreads
            if let node = options["threads"], let value = node.int { threads = value }
            action = .evaluateGraph(graph: graph.path, truth: truth?.path, sample: sample, threads: threads)
        case .evaluate:
            let datasetInput = reference("input"), indexInput = reference("index"), settings = decode(EvaluationConfig.self)
            if let known = datasetInput?.info, !known.datasets.isEmpty {
                if let width = known.datasets["neighbors"]?.last {
                    if let settings { check(width >= settings.k, "k", "k = \(settings.k) exceeds the \(width) ground-truth neighbours of \(datasetInput!.path)") }
                } else {
                    problem(keyNode(options, "input"), "\(label).input", "\(datasetInput!.path) has no ground truth (neighbors, distances); add a groundtruth step")
                }
            }
            guard let dataset = datasetInput, let index = indexInput, var config = settings else { return nil }
            if !hasThreads { config.threads = jobThreads }
            check(!config.nprobe.isEmpty && config.nprobe.allSatisfy { $0 >= 1 }, "nprobe", "every nprobe must be at least 1")
            check(config.refine.allSatisfy { $0 >= 0 }, "refine", "refine values must not be negative")
            let annBenchmarks = bool("ann_benchmarks_results")
            outputs.append(context.outputFolder + "/" + name + ".svg")
            if annBenchmarks { outputs.append(context.outputFolder + "/" + name + "-ann-benchmarks") }
            action = .evaluate(input: dataset.path, index: index.path, config: config, annBenchmarksResults: annBenchmarks)
        case .dedup:
            let input = reference("input"), settings = decode(DedupConfig.self)
            guard let resolved = input, var config = settings else { return nil }
            if !hasMetric { config.metric = config.metric ?? jobMetric }
            if !hasThreads { config.threads = jobThreads }
            let dataset = datasetReference(resolved, dataset: string("dataset", default: "train") ?? "train", key: "input")
            check(!config.thresholds.isEmpty, "threshold", "missing: at least one distance threshold")
            check(config.thresholds.allSatisfy { $0.isFinite }, "threshold", "thresholds must be numbers")
            if config.mode == .fast, (config.metric ?? resolved.info?.metric) == .ip {
                problem(keyNode(options, "mode") ?? optionsNode, "\(label).mode", "fast mode needs euclidean or angular; use exact for ip")
            }
            let writeKept = bool("write_kept")
            if writeKept {
                let kept = context.outputFolder + "/" + name + "-kept.hdf5"
                outputs.append(kept)
                var keptInfo = DataInfo()
                if let dimension = resolved.info?.dimension(dataset.dataset) { keptInfo.datasets["train"] = [-1, dimension] }
                if let test = resolved.info?.datasets["test"] { keptInfo.datasets["test"] = test }
                keptInfo.metric = resolved.info?.metric
                context.infos[kept] = keptInfo
            }
            action = .dedup(input: dataset, config: config, writePairs: bool("write_pairs"), writeKept: writeKept)
        }
        context.stepNames.append(name)
        context.infos[output] = info
        let fingerprint = Fingerprint.hash([kind.rawValue, name, Fingerprint.describe(action)] + dependencies)
        return PlannedStep(index: index, name: name, kind: kind, action: action, output: output, outputs: outputs, fingerprint: fingerprint)
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
            return (key(context.codingPath), detail.contains("Cannot initialize") || detail.contains("invalid") ? "not an accepted value: \(detail)" : detail)
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

    /// A canonical text of an action's settings (sorted JSON).
    static func describe(_ action: StepAction) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        func json<T: Encodable>(_ value: T) -> String { (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "" }
        switch action {
        case .generate(let config): return json(config)
        case .groundtruth(let input, let config): return input + json(config)
        case .knnGraph(let input, let config): return input.description + json(config)
        case .approxKNNGraph(let input, let config): return "approx" + input.description + json(config)
        case .train(let input, let config): return input.description + json(config)
        case .search(let index, let queries, let base, let config): return index + queries.description + (base?.description ?? "") + json(config)
        case .evaluate(let input, let index, let config, let results): return input + index + json(config) + "\(results)"
        case .evaluateGraph(let graph, let truth, let sample, _): return graph + (truth ?? "") + "\(sample ?? 0)"
        case .dedup(let input, let config, let pairs, let kept): return input.description + json(config) + "\(pairs)\(kept)"
        }
    }
}
