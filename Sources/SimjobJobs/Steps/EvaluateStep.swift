import Foundation
import SimjobAlgorithms
import SimjobOperations
import SimjobHDF5

/// `evaluate`: a recall / QPS sweep of an index, or the recall of a k-NN graph.
enum EvaluateStep: StepDefinition {
    static let ownKeys: [(key: String, help: String, example: String)] = [
        ("input", "ann-benchmarks file with train, test, neighbors, distances", "data"),
        ("index", "an index (a train step or a path), or a list of them swept into one report and plot", "index"),
        ("ann_benchmarks_results", "also write ann-benchmarks result files (folder STEP-ann-benchmarks)", "false"),
        ("graph", "instead of an index: a k-NN graph to score (a knn_graph step or a path)", "null"),
        ("truth", "with graph: the exact graph (default: exact neighbours of the sample, computed)", "null"),
        ("sample", "with graph: rows scored, drawn with a fixed seed (null: every row)", "null"),
    ]
    static var settingsKeys: [String] { EvaluationConfig.jobKeys }
    static let summary = "recall / QPS sweep with a recall-vs-QPS plot (simjob evaluate)"
    static var defaultSettings: Encodable { EvaluationConfig() }

    struct IndexSweep: StepAction {
        var input: String
        var indexes: [String]
        var config: EvaluationConfig
        var annBenchmarksResults: Bool
        var settingsDescription: String { input + indexes.joined(separator: "\u{1F}") + canonicalJSON(config) + "\(annBenchmarksResults)" }

        func run(_ step: PlannedStep, runner: JobRunner) throws -> String {
            let outputs = try EvaluateOperation.run(
                dataset: input, indexes: indexes, config: config, output: step.output, plot: step.outputs[1],
                annBenchmarksDirectory: annBenchmarksResults ? step.outputs[2] : nil, logger: runner.logger)
            if runner.progressStyle != .silent { FileHandle.standardError.write(Data((EvaluationOutput.table(outputs.report) + "\n").utf8)) }
            let best = outputs.report.rows.max { $0.recall < $1.recall }
            return "\(outputs.report.rows.count) settings, best recall \(String(format: "%.4f", best?.recall ?? 0)); report \(step.output), plot \(outputs.plotPath)"
        }
    }

    struct GraphRecall: StepAction {
        var graph: String
        var truth: String?
        var sample: Int?
        var threads: Int?
        var settingsDescription: String { graph + (truth ?? "") + "\(sample ?? 0)" }

        func run(_ step: PlannedStep, runner: JobRunner) throws -> String {
            let result = try GraphEvaluation.run(graph: graph, truth: truth, input: nil, sample: sample, threads: threads)
            let out = try AtomicOutputFile(step.output)
            try GraphEvaluation.write(result, graph: graph, truth: truth, to: out.file)
            try out.commit()
            return String(format: "graph recall %.4f (epsilon %.4f, id %.4f) on %d of %d rows against %@", result.scores.knn,
                          result.scores.epsilon, result.scores.ids, result.sampled, result.rows, truth ?? "exact neighbours computed here")
        }
    }

    static func plan(_ planning: inout StepPlanning) -> (any StepAction)? {
        planning.options["graph"] != nil ? planGraph(&planning) : planSweep(&planning)
    }

    static func planGraph(_ planning: inout StepPlanning) -> (any StepAction)? {
        let graph = planning.reference("graph"), truth = planning.reference("truth", required: false)
        let label = planning.label
        var sample: Int?
        if let node = planning.options["sample"], node.null == nil {
            if let value = node.int, value >= 1 { sample = value } else { planning.problem(planning.keyNode("sample"), "\(label).sample", "must be a whole number of at least 1") }
        }
        if truth == nil && sample == nil {
            planning.problem(planning.keyNode("graph"), "\(label).sample", "without truth, give sample: the rows whose exact neighbours are computed")
        }
        for key in ["input", "index", "ann_benchmarks_results"] + EvaluationConfig.jobKeys.filter({ $0 != "threads" }) where planning.options[key] != nil {
            planning.problem(planning.keyNode(key), "\(label).\(key)", "does not apply when scoring a graph")
        }
        guard let graph else { return nil }
        var threads = planning.jobThreads
        if let node = planning.options["threads"], let value = node.int { threads = value }
        return GraphRecall(graph: graph.path, truth: truth?.path, sample: sample, threads: threads)
    }

    static func planSweep(_ planning: inout StepPlanning) -> (any StepAction)? {
        let datasetInput = planning.reference("input"), indexInputs = planning.references("index")
        let settings = planning.decode(EvaluationConfig.self)
        if let known = datasetInput?.info, !known.datasets.isEmpty {
            if let width = known.datasets["neighbors"]?.last {
                if let settings { planning.check(width >= settings.k, "k", "k = \(settings.k) exceeds the \(width) ground-truth neighbours of \(datasetInput!.path)") }
            } else {
                planning.problem(planning.keyNode("input"), "\(planning.label).input", "\(datasetInput!.path) has no ground truth (neighbors, distances); add a groundtruth step")
            }
        }
        guard let dataset = datasetInput, let indexes = indexInputs, var config = settings else { return nil }
        config.threads = planning.withJobDefaults(metric: nil, threads: config.threads).threads
        planning.check(!config.nprobe.isEmpty && config.nprobe.allSatisfy { $0 >= 1 }, "nprobe", "every nprobe must be at least 1")
        planning.check(config.refine.allSatisfy { $0 >= 0 }, "refine", "refine values must not be negative")
        let annBenchmarks = planning.bool("ann_benchmarks_results")
        planning.outputs.append(planning.outputFolder + "/" + planning.name + ".svg")
        if annBenchmarks { planning.outputs.append(planning.outputFolder + "/" + planning.name + "-ann-benchmarks") }
        return IndexSweep(input: dataset.path, indexes: indexes.map(\.path), config: config, annBenchmarksResults: annBenchmarks)
    }
}
