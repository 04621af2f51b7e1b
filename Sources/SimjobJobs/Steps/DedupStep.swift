import Foundation
import SimjobAlgorithms
import SimjobOperations

/// `dedup`: near-duplicate groups and the keep-mask (and the kept rows).
enum DedupStep: StepDefinition {
    static let ownKeys: [(key: String, help: String, example: String)] = [
        ("input", "the set: a step, a named input or a path", "data"),
        ("dataset", "dataset inside the input", "train"),
        ("write_pairs", "also write dedup/pairs and dedup/pair_distances", "false"),
        ("write_kept", "also write STEP-kept.hdf5 with only the kept rows (refer to it as STEP.kept)", "false"),
    ]
    static var settingsKeys: [String] { DedupConfig.jobKeys }
    static let summary = "near-duplicate groups and keep-mask (simjob dedup)"
    static var defaultSettings: Encodable { DedupConfig() }

    /// The kept-rows file of a dedup step named `name`, which later steps call `NAME.kept`.
    static func keptPath(folder: String, name: String) -> String { folder + "/" + name + "-kept.hdf5" }

    struct Action: StepAction {
        var input: DatasetReference
        var config: DedupConfig
        var writePairs: Bool
        var writeKept: Bool
        var settingsDescription: String { input.description + canonicalJSON(config) + "\(writePairs)\(writeKept)" }

        func run(_ step: PlannedStep, runner: JobRunner) throws -> String {
            let result = try DedupOperation.run(
                input: input, output: step.output, config: config, writePairs: writePairs,
                writeKept: writeKept ? step.outputs[1] : nil, logger: runner.logger, progressStyle: runner.progressStyle)
            let primary = result.byThreshold[0]
            return String(format: "%d pairs, %d groups, %d of %d rows removed at threshold %g (%.0f rows/s)", primary.pairs, primary.groupCount,
                          primary.rowsRemoved, result.rows, primary.threshold, Double(result.rows) / max(result.seconds, 1e-9))
        }
    }

    static func plan(_ planning: inout StepPlanning) -> (any StepAction)? {
        let input = planning.reference("input"), settings = planning.decode(DedupConfig.self)
        guard let resolved = input, var config = settings else { return nil }
        (config.metric, config.threads) = planning.withJobDefaults(metric: config.metric, threads: config.threads)
        let dataset = planning.datasetReference(resolved, dataset: planning.datasetName(default: "train"), key: "input")
        planning.check(!config.thresholds.isEmpty, "threshold", "missing: at least one distance threshold")
        planning.check(config.thresholds.allSatisfy { $0.isFinite }, "threshold", "thresholds must be numbers")
        if config.mode == .exact {
            for key in ["partitions", "nprobe", "recall_sample", "seed"] where planning.options[key] != nil {
                planning.problem(planning.keyNode(key), "\(planning.label).\(key)", "applies to mode fast only")
            }
        }
        if config.mode == .fast, planning.options["gemm"] != nil {
            planning.problem(planning.keyNode("gemm"), "\(planning.label).gemm", "applies to mode exact only")
        }
        if config.mode == .fast, (config.metric ?? resolved.info?.metric) == .ip {
            planning.problem(planning.keyNode("mode") ?? planning.optionsNode, "\(planning.label).mode", "fast mode needs euclidean or angular; use exact for ip")
        }
        let writeKept = planning.bool("write_kept")
        if writeKept {
            let kept = keptPath(folder: planning.outputFolder, name: planning.name)
            planning.outputs.append(kept)
            var keptInfo = DataInfo()
            if let dimension = resolved.info?.dimension(dataset.dataset) { keptInfo.datasets["train"] = [-1, dimension] }
            if let test = resolved.info?.datasets["test"] { keptInfo.datasets["test"] = test }
            keptInfo.metric = resolved.info?.metric
            planning.context.infos[kept] = keptInfo
        }
        return Action(input: dataset, config: config, writePairs: planning.bool("write_pairs"), writeKept: writeKept)
    }
}
