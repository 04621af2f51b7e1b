import Foundation
import SimjobAlgorithms
import SimjobOperations

/// `generate`: a clustered synthetic dataset with exact ground truth.
enum GenerateStep: StepDefinition {
    static let ownKeys: [(key: String, help: String, example: String)] = []
    static var settingsKeys: [String] { SyntheticConfig.jobKeys }
    static let summary = "a clustered synthetic dataset with exact ground truth (simjob generate)"
    static var defaultSettings: Encodable { SyntheticConfig() }

    struct Action: StepAction {
        var config: SyntheticConfig
        var settingsDescription: String { canonicalJSON(config) }

        func run(_ step: PlannedStep, runner: JobRunner) throws -> String {
            let summary = try Generate.run(config, output: step.output, threads: nil, progressStyle: runner.progressStyle, logger: runner.logger)
            let rate = Double(config.n + config.queries) / max(summary.seconds, 1e-9)
            return "\(config.n) x \(config.dim) train, \(config.queries) queries"
                + (config.duplicates > 0 ? ", \(summary.plantedRows) planted duplicates" : "")
                + String(format: " (%.0f rows/s)", rate)
        }
    }

    static func plan(_ planning: inout StepPlanning) -> (any StepAction)? {
        guard var config = planning.decode(SyntheticConfig.self) else { return nil }
        if !planning.hasMetric, let jobMetric = planning.jobMetric { config.metric = jobMetric }
        planning.check(config.n >= 1, "n", "must be at least 1")
        planning.check(config.dim >= 1, "dim", "must be at least 1")
        planning.check(config.latentDim >= 0 && config.latentDim <= config.dim, "latent_dim", "must be between 0 and dim = \(config.dim)")
        planning.check(config.anisotropy == 0 || config.latentDim == 0, "anisotropy", "excludes latent_dim (anisotropic clusters span the full dimension)")
        planning.check((0...0.5).contains(config.duplicates), "duplicates", "must be a fraction between 0 and 0.5")
        planning.info.datasets = ["train": [config.n, config.dim], "test": [config.queries, config.dim]]
        if config.groundTruthK > 0 && config.queries > 0 {
            let k = min(config.groundTruthK, config.n)
            planning.info.datasets["neighbors"] = [config.queries, k]
            planning.info.datasets["distances"] = [config.queries, k]
        }
        if config.duplicates > 0 { planning.info.datasets["dup_group"] = [config.n] }
        planning.info.metric = config.metric
        return Action(config: config)
    }
}
