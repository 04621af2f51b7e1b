import Foundation
import SimjobAlgorithms
import SimjobOperations

/// `train`: an IVF-PQ index.
enum TrainStep: StepDefinition {
    static let ownKeys: [(key: String, help: String, example: String)] = [
        ("input", "the set to index: a step, a named input or a path", "data"),
        ("dataset", "dataset inside the input", "train"),
    ]
    static var settingsKeys: [String] { IVFPQConfig.jobKeys }
    static let summary = "an IVF-PQ index (simjob train)"
    static var defaultSettings: Encodable { IVFPQConfig() }

    struct Action: StepAction {
        var input: DatasetReference
        var config: IVFPQConfig
        var settingsDescription: String { input.description + canonicalJSON(config) }

        func run(_ step: PlannedStep, runner: JobRunner) throws -> String {
            let (index, stats) = try QuantizationOperations.train(input: input, output: step.output, config: config, logger: runner.logger,
                                                                  progressStyle: runner.progressStyle)
            return String(format: "%@ on %d vectors (%.0f vectors/s), index %@", index.summary, stats.vectors,
                          Double(stats.vectors) / max(stats.totalSeconds, 1e-9), formatBytes(index.sizeInBytes))
        }
    }

    static func plan(_ planning: inout StepPlanning) -> (any StepAction)? {
        let input = planning.reference("input"), settings = planning.decode(IVFPQConfig.self)
        guard let resolved = input, var config = settings else { return nil }
        (config.metric, config.threads) = planning.withJobDefaults(metric: config.metric, threads: config.threads)
        let dataset = planning.datasetReference(resolved, dataset: planning.datasetName(default: "train"), key: "input")
        if config.type == .ivfpq, let dimension = resolved.info?.dimension(dataset.dataset) {
            planning.check(config.m >= 1 && dimension % config.m == 0, "m", "m = \(config.m) must divide the dimension \(dimension) of \(dataset)")
        }
        if config.type == .ivfpq || config.type == .ivfflat, let rows = resolved.info?.rows(dataset.dataset) {
            planning.check(config.nlist >= 1 && config.nlist <= rows, "nlist", "nlist = \(config.nlist) must be between 1 and the \(rows) rows of \(dataset)")
        }
        planning.check((1...8).contains(config.nbits), "nbits", "must be between 1 and 8")
        if config.type == .hnsw { planning.check(config.m >= 2, "m", "m = \(config.m) links per node must be at least 2") }
        if config.type == .lsh {
            planning.check((1...1024).contains(config.tables), "tables", "must be between 1 and 1024")
            planning.check((0...LSHIndex.maximumBits).contains(config.hashBits), "hash_bits", "must be between 0 (automatic) and \(LSHIndex.maximumBits)")
        }
        if config.type == .rptrees {
            planning.check((1...4096).contains(config.trees), "trees", "must be between 1 and 4096")
            planning.check(config.leafSize >= 0, "leaf_size", "must be 0 (automatic) or more")
        }
        planning.info.indexed = (resolved.info?.rows(dataset.dataset), resolved.info?.dimension(dataset.dataset) ?? 0)
        planning.info.metric = config.metric ?? resolved.info?.metric
        return Action(input: dataset, config: config)
    }
}
