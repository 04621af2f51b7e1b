import Foundation
import SimjobAlgorithms
import SimjobOperations

/// `knn_graph`: every row's k nearest other rows, exact or approximate.
enum KNNGraphStep: StepDefinition {
    static let ownKeys: [(key: String, help: String, example: String)] = [
        ("input", "the set: a step, a named input or a path", "data"),
        ("dataset", "dataset inside the input", "train"),
        ("method", "exact, or approx (each row searches its nprobe nearest k-means cells)", "exact"),
    ]
    static var settingsKeys: [String] { ExactKNNConfig.jobKeys + ApproxKNNConfig.jobKeys.filter { !ExactKNNConfig.jobKeys.contains($0) } }
    static let summary = "every row's k nearest other rows (simjob knn-graph)"
    static var defaultSettings: Encodable { Defaults() }

    /// The step's defaults: the exact engine's settings and the approximate method's.
    struct Defaults: Encodable {
        func encode(to encoder: Encoder) throws {
            try ExactKNNConfig().encode(to: encoder)
            try ApproxKNNConfig().encode(to: encoder)
        }
    }

    struct Exact: StepAction {
        var input: DatasetReference
        var config: ExactKNNConfig
        var settingsDescription: String { input.description + canonicalJSON(config) }

        func run(_ step: PlannedStep, runner: JobRunner) throws -> String {
            let stats = try ExactOperations.knnGraph(input: input, output: step.output, config: config, progressStyle: runner.progressStyle)
            return String(format: "%d rows, k=%d, %@ (%.0f rows/s, %.0f GFLOP/s)", stats.rows, stats.k, stats.metric.rawValue,
                          Double(stats.rows) / max(stats.seconds, 1e-9), stats.gflops)
        }
    }

    struct Approximate: StepAction {
        var input: DatasetReference
        var config: ApproxKNNConfig
        var settingsDescription: String { "approx" + input.description + canonicalJSON(config) }

        func run(_ step: PlannedStep, runner: JobRunner) throws -> String {
            let stats = try ExactOperations.approxKNNGraph(input: input, output: step.output, config: config, logger: runner.logger,
                                                           progressStyle: runner.progressStyle)
            return "approximate: " + stats.summary
        }
    }

    static func plan(_ planning: inout StepPlanning) -> (any StepAction)? {
        let method = planning.string("method", default: "exact") ?? "exact"
        let input = planning.reference("input")
        let settings = planning.decode(ExactKNNConfig.self), approxSettings = planning.decode(ApproxKNNConfig.self)
        guard let resolved = input, var config = settings, var approx = approxSettings else { return nil }
        (config.metric, config.threads) = planning.withJobDefaults(metric: config.metric, threads: config.threads)
        (approx.metric, approx.threads) = planning.withJobDefaults(metric: approx.metric, threads: approx.threads)
        let dataset = planning.datasetReference(resolved, dataset: planning.datasetName(default: "train"), key: "input")
        planning.check(method == "exact" || method == "approx", "method", "must be exact or approx")
        let approxOnly = ApproxKNNConfig.jobKeys.filter { !ExactKNNConfig.jobKeys.contains($0) }
        let exactOnly = ExactKNNConfig.jobKeys.filter { !ApproxKNNConfig.jobKeys.contains($0) }
        for key in method == "approx" ? exactOnly : approxOnly where planning.options[key] != nil {
            planning.problem(planning.keyNode(key), "\(planning.label).\(key)", "applies to method \(method == "approx" ? "exact" : "approx") only")
        }
        if let rows = resolved.info?.rows(dataset.dataset) {
            planning.check(config.k >= 1 && config.k <= rows - 1, "k", "k = \(config.k) must be between 1 and n - 1 = \(rows - 1) (a row is not its own neighbour)")
        }
        planning.check(approx.nprobe >= 1, "nprobe", "must be at least 1")
        if planning.options["recall"] != nil {
            for key in ["nprobe", "rounds"] where planning.options[key] != nil {
                planning.problem(planning.keyNode(key), "\(planning.label).\(key)", "\(key) and recall exclude each other: with a target the engine picks nprobe and the rounds")
            }
        }
        return method == "approx" ? Approximate(input: dataset, config: approx) : Exact(input: dataset, config: config)
    }
}
