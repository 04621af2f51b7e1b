import ArgumentParser
import Foundation
import SimjobAlgorithms
import SimjobKernels

extension DedupConfig.Mode: ExpressibleByArgument {}
extension DedupConfig.Keep: ExpressibleByArgument {}

struct DedupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dedup",
        abstract: "Near-duplicate groups and keep-masks: every pair within a distance threshold, grouped, one row kept per group.")

    @Argument(help: "FILE[:DATASET] (default dataset: train).") var input: String
    @Option(help: "Distance threshold(s) in the metric (angular: 1 - cos; euclidean: L2), comma-separated; the first one's groups go to dedup/group.")
    var threshold: CommaSeparated<Double>
    @Option(help: "Output file.") var output: String
    @Option(help: "exact (every pair) or fast (k-means partitions and their borders).") var mode = DedupConfig().mode
    @Option(help: "Representative per group: first (lowest id) or centroid (closest to the group mean).") var keep = DedupConfig().keep
    @Option(help: "euclidean, angular or ip (default: the input's distance attribute).") var metric: Metric?
    @Option(help: "Fast mode: k-means partitions (0: n / 2000).") var partitions = DedupConfig().partitions
    @Option(help: "Fast mode: rows checked against an exact join for the pair recall in the log (0: none).") var recallSample = DedupConfig().recallSample
    @Flag(help: "Also write dedup/pairs and dedup/pair_distances.") var writePairs = false
    @Option(help: "Also write a new dataset file with only the kept train rows (test unchanged).") var writeKept: String?
    @Option(help: "Random seed (fast mode).") var seed = DedupConfig().seed
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.warnAboutBLAS()
        var config = DedupConfig(thresholds: threshold.values)
        config.metric = metric
        config.mode = mode
        config.keep = keep
        config.partitions = partitions
        config.recallSample = recallSample
        config.threads = common.threads
        config.seed = seed
        let result = try DedupOperation.run(
            input: DatasetReference(parsing: input, defaultDataset: "train"), output: output, config: config,
            writePairs: writePairs, writeKept: writeKept, logger: common.logger,
            progressStyle: common.progressStyle)
        printLine(DedupOperation.summary(result, output: output) + (writeKept.map { "\n  kept rows -> \($0)" } ?? ""))
    }
}
