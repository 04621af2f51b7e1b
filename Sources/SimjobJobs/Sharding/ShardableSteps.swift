import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobOperations

// The step kinds that run in shards (`ShardOperations` says how each is cut and merged).

extension GroundTruthStep.Action: ShardableAction {
    func runShard(_ shard: ShardID, into file: HDF5File, step: PlannedStep, runner: JobRunner) throws -> (rows: Range<Int>, summary: String) {
        let (rows, stats) = try ShardOperations.groundTruthShard(
            input: input, shard: (shard.index, shard.count), config: config, into: file, progressStyle: runner.progressStyle)
        return (rows, String(format: "queries %d..<%d of test x %d rows, k=%d (%.0f queries/s)", rows.lowerBound, rows.upperBound,
                             stats.baseRows, stats.k, Double(stats.rows) / max(stats.seconds, 1e-9)))
    }

    func merge(_ shards: [String], manifests: [ShardManifest], step: PlannedStep, runner: JobRunner) throws -> String {
        let rows = try ShardOperations.groundTruthMerge(input: input, output: step.output, shards: shards, k: config.k, metric: config.metric)
        return "\(rows) queries, k=\(config.k), merged from \(shards.count) shards"
    }
}

extension KNNGraphStep.Exact: ShardableAction {
    func runShard(_ shard: ShardID, into file: HDF5File, step: PlannedStep, runner: JobRunner) throws -> (rows: Range<Int>, summary: String) {
        let (rows, stats) = try ShardOperations.knnGraphShard(
            input: input, shard: (shard.index, shard.count), config: config, into: file, progressStyle: runner.progressStyle)
        return (rows, String(format: "rows %d..<%d of %d, k=%d, %@ (%.0f rows/s)", rows.lowerBound, rows.upperBound, stats.baseRows,
                             stats.k, stats.metric.rawValue, Double(stats.rows) / max(stats.seconds, 1e-9)))
    }

    func merge(_ shards: [String], manifests: [ShardManifest], step: PlannedStep, runner: JobRunner) throws -> String {
        let rows = try ShardOperations.knnGraphMerge(input: input, output: step.output, shards: shards, k: config.k, metric: config.metric,
                                                     settings: Provenance.describe(config))
        return "\(rows) rows, k=\(config.k), merged from \(shards.count) shards"
    }
}

/// The approximate graph: the projection and the cells are prepared once, the search runs in
/// shards by home cells, the merge runs the joins and the re-scoring (hand settings only).
/// (The runner checks each step's preparation before calling `merge`.)
extension KNNGraphStep.Approximate: ShardableAction {
    var isShardable: Bool { ApproxKNNGraph(config: config).isShardable }
    var needsPreparation: Bool { true }

    func prepare(into file: HDF5File, step: PlannedStep, runner: JobRunner) throws -> String {
        let prepared = try ShardOperations.approxGraphPrepare(input: input, config: config, into: file, spillFolder: runner.shardStore(step)!.folder,
                                                              logger: runner.logger, progressStyle: runner.progressStyle)
        return "\(prepared.centroids.rows) cells" + (prepared.projection.map { ", ranked in \($0.outputDimension) principal components" } ?? "")
    }

    func runShard(_ shard: ShardID, into file: HDF5File, step: PlannedStep, runner: JobRunner) throws -> (rows: Range<Int>, summary: String) {
        let store = runner.shardStore(step)!
        let (positions, searched) = try ShardOperations.approxGraphShard(
            input: input, prepared: store.preparedPath, shard: (shard.index, shard.count), config: config, into: file,
            spillFolder: store.folder, logger: runner.logger, progressStyle: runner.progressStyle)
        return (positions, "searched \(searched.rows.count) rows (layout positions \(positions.lowerBound)..<\(positions.upperBound)), \(searched.scored) pairs")
    }

    func merge(_ shards: [String], manifests: [ShardManifest], step: PlannedStep, runner: JobRunner) throws -> String {
        let store = runner.shardStore(step)!
        let stats = try ShardOperations.approxGraphMerge(input: input, prepared: store.preparedPath, shards: shards, output: step.output, config: config,
                                                         logger: runner.logger, progressStyle: runner.progressStyle)
        return "approximate: " + stats.summary + ", search merged from \(shards.count) shards"
    }
}

/// Dedup: exact mode by first rows of the pairs; fast mode by runs of partitions, whose
/// centroids are prepared once.
extension DedupStep.Action: ShardableAction {
    var needsPreparation: Bool { config.mode == .fast }

    func prepare(into file: HDF5File, step: PlannedStep, runner: JobRunner) throws -> String {
        let partitions = try ShardOperations.dedupPrepare(input: input, config: config, into: file, spillFolder: runner.shardStore(step)!.folder,
                                                          logger: runner.logger)
        return "\(partitions) partitions"
    }

    func runShard(_ shard: ShardID, into file: HDF5File, step: PlannedStep, runner: JobRunner) throws -> (rows: Range<Int>, summary: String) {
        let store = runner.shardStore(step)!
        let (range, pairs) = try ShardOperations.dedupShard(
            input: input, shard: (shard.index, shard.count), config: config, into: file,
            prepared: config.mode == .fast ? store.preparedPath : nil, spillFolder: store.folder, logger: runner.logger,
            progressStyle: runner.progressStyle)
        let what = config.mode == .fast ? "partitions" : "pairs from rows"
        return (range, "\(what) \(range.lowerBound)..<\(range.upperBound): \(pairs) pairs")
    }

    func merge(_ shards: [String], manifests: [ShardManifest], step: PlannedStep, runner: JobRunner) throws -> String {
        let store = runner.shardStore(step)!
        let result = try ShardOperations.dedupMerge(
            input: input, output: step.output, shards: shards, covered: manifests.last?.rows.last ?? 0, config: config, writePairs: writePairs,
            writeKept: writeKept ? step.outputs[1] : nil, prepared: config.mode == .fast ? store.preparedPath : nil)
        let primary = result.byThreshold[0]
        return "\(primary.pairs) pairs, \(primary.groupCount) groups, \(primary.rowsRemoved) of \(result.rows) rows removed at threshold \(primary.threshold), merged from \(shards.count) shards"
    }
}

/// IVF-PQ: the quantizers are trained once (the preparation), the encoding runs in shards.
extension TrainStep.Action: ShardableAction {
    var needsPreparation: Bool { true }

    func prepare(into file: HDF5File, step: PlannedStep, runner: JobRunner) throws -> String {
        let stats = try ShardOperations.trainPrepare(input: input, config: config, into: file, logger: runner.logger, progressStyle: runner.progressStyle)
        return "quantizers trained on \(stats.trainingPoints) of \(stats.vectors) vectors"
    }

    func runShard(_ shard: ShardID, into file: HDF5File, step: PlannedStep, runner: JobRunner) throws -> (rows: Range<Int>, summary: String) {
        let store = runner.shardStore(step)!
        let rows = try ShardOperations.trainShard(
            input: input, prepared: store.preparedPath, shard: (shard.index, shard.count), config: config, into: file, logger: runner.logger,
            progressStyle: runner.progressStyle)
        return (rows, "encoded rows \(rows.lowerBound)..<\(rows.upperBound)")
    }

    func merge(_ shards: [String], manifests: [ShardManifest], step: PlannedStep, runner: JobRunner) throws -> String {
        let store = runner.shardStore(step)!
        // The runner checked the preparation before the merge; its manifest holds its time.
        let preparation = try store.requirePreparation(jobFile: runner.plan.file)
        let seconds = preparation.seconds + manifests.reduce(0) { $0 + $1.seconds }
        let index = try ShardOperations.trainMerge(input: input, prepared: store.preparedPath, shards: shards, output: step.output, config: config, seconds: seconds)
        return "IVF-PQ nlist=\(index.nlist) m=\(index.pq.m) on \(index.count) vectors, index \(formatBytes(index.sizeInBytes)), merged from \(shards.count) shards"
    }
}
