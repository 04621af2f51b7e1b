import Foundation
import SimjobAlgorithms
import SimjobOperations

/// `groundtruth`: exact neighbors/distances of test against train.
enum GroundTruthStep: StepDefinition {
    static let ownKeys: [(key: String, help: String, example: String)] = [
        ("input", "ann-benchmarks file with train and test: a step, a named input or a path", "data"),
    ]
    static var settingsKeys: [String] { ExactKNNConfig.jobKeys }
    static let summary = "exact neighbors/distances of test against train (simjob groundtruth)"
    static var defaultSettings: Encodable { ExactKNNConfig() }

    struct Action: StepAction {
        var input: String
        var config: ExactKNNConfig
        var settingsDescription: String { input + canonicalJSON(config) }

        func run(_ step: PlannedStep, runner: JobRunner) throws -> String {
            let stats = try ExactOperations.groundTruth(input: input, output: step.output, config: config, progressStyle: runner.progressStyle)
            return String(format: "%d queries x %d rows, k=%d (%.0f queries/s, %.0f GFLOP/s)", stats.rows, stats.baseRows, stats.k,
                          Double(stats.rows) / max(stats.seconds, 1e-9), stats.gflops)
        }
    }

    static func plan(_ planning: inout StepPlanning) -> (any StepAction)? {
        let input = planning.reference("input"), settings = planning.decode(ExactKNNConfig.self)
        guard let resolved = input, var config = settings else { return nil }
        (config.metric, config.threads) = planning.withJobDefaults(metric: config.metric, threads: config.threads)
        if let rows = resolved.info?.rows("train") {
            planning.check(config.k >= 1 && config.k <= rows, "k", "k = \(config.k) must be between 1 and the \(rows) rows of train")
        }
        if let known = resolved.info, !known.datasets.isEmpty, known.datasets["test"] == nil {
            planning.problem(planning.keyNode("input"), "\(planning.label).input", "\(resolved.path) has no test dataset")
        }
        planning.info = resolved.info ?? DataInfo()
        if let queries = planning.info.rows("test") {
            planning.info.datasets["neighbors"] = [queries, config.k]
            planning.info.datasets["distances"] = [queries, config.k]
        }
        return Action(input: resolved.path, config: config)
    }
}
