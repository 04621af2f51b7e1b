import Foundation
import SimjobAlgorithms
import SimjobOperations

/// `search`: k nearest neighbours of the queries from an index.
enum SearchStep: StepDefinition {
    static let ownKeys: [(key: String, help: String, example: String)] = [
        ("index", "an index: a train step or a path", "index"),
        ("input", "file holding the queries: a step, a named input or a path", "data"),
        ("dataset", "dataset of queries inside the input", "test"),
        ("base", "original vectors for refine (default: the index's source)", "null"),
    ]
    static var settingsKeys: [String] { IVFPQSearchConfig.jobKeys }
    static let summary = "k nearest neighbours of the queries from an index (simjob search)"
    static var defaultSettings: Encodable { IVFPQSearchConfig() }

    struct Action: StepAction {
        var index: String
        var queries: DatasetReference
        var base: DatasetReference?
        var config: IVFPQSearchConfig
        var settingsDescription: String { index + queries.description + (base?.description ?? "") + canonicalJSON(config) }

        func run(_ step: PlannedStep, runner: JobRunner) throws -> String {
            let stats = try QuantizationOperations.search(index: index, queries: queries, output: step.output, config: config, base: base)
            let setting = config.ef.map { "ef=\($0)" } ?? config.probes.map { "probes=\($0)" } ?? config.searchK.map { "search_k=\($0)" } ?? "nprobe=\(config.nprobe)"
            return String(format: "%d queries, %@, refine=%d (%.0f queries/s)", stats.queries, setting, config.refine, stats.queriesPerSecond)
        }
    }

    static func plan(_ planning: inout StepPlanning) -> (any StepAction)? {
        let indexInput = planning.reference("index"), queryInput = planning.reference("input")
        let settings = planning.decode(IVFPQSearchConfig.self)
        guard let index = indexInput, let queries = queryInput, var config = settings else { return nil }
        config.threads = planning.withJobDefaults(metric: nil, threads: config.threads).threads
        let dataset = planning.datasetReference(queries, dataset: planning.datasetName(default: "test"), key: "input")
        let base = planning.reference("base", required: false).map { DatasetReference(parsing: $0.path, defaultDataset: "train") }
        if let count = index.info?.indexed?.count {
            planning.check(config.k >= 1 && config.k <= count, "k", "k = \(config.k) must be between 1 and the \(count) indexed vectors")
        }
        planning.check(config.nprobe >= 1, "nprobe", "must be at least 1")
        planning.check(config.refine >= 0, "refine", "must not be negative")
        return Action(index: index.path, queries: dataset, base: base, config: config)
    }
}
