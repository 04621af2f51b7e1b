import ArgumentParser
import Foundation
import SimjobAlgorithms
import SimjobOperations
import SimjobKernels
import SimjobBLAS

extension DedupConfig.Mode: ExpressibleByArgument {}
extension DedupConfig.Keep: ExpressibleByArgument {}

struct DedupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dedup",
        abstract: "Near-duplicate groups and keep-masks: every pair within a distance threshold, grouped, one row kept per group.")

    @Argument(help: "FILE[:DATASET] (default dataset: train).") var input: String
    @Option(help: ArgumentHelp(ParameterHelp.help("threshold")))
    var threshold: CommaSeparated<Double>
    @Option(help: "Output file.") var output: String
    @Option(help: ArgumentHelp(ParameterHelp.help("mode"))) var mode = DedupConfig().mode
    @Option(help: ArgumentHelp(ParameterHelp.help("keep"))) var keep = DedupConfig().keep
    @Option(help: ArgumentHelp(ParameterHelp.help("metric"))) var metric: Metric?
    @Option(help: ArgumentHelp(ParameterHelp.help("partitions", in: "dedup") + " (default: \(DedupConfig().partitions))")) var partitions: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("nprobe", in: "dedup") + " (default: \(DedupConfig().nprobe))")) var nprobe: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("recall_sample") + " (default: \(DedupConfig().recallSample))")) var recallSample: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("max_pairs"))) var maxPairs = DedupConfig().maxPairs
    @Option(help: ArgumentHelp(ParameterHelp.help("memory_limit", in: "dedup"))) var memoryLimit: ByteCount?
    @Flag(help: "Also write dedup/pairs and dedup/pair_distances.") var writePairs = false
    @Option(help: "Also write a new dataset file with only the kept train rows (test unchanged).") var writeKept: String?
    @Option(help: ArgumentHelp(ParameterHelp.help("seed", in: "dedup") + " (default: \(DedupConfig().seed))")) var seed: UInt64?
    @Option(help: ArgumentHelp(ParameterHelp.help("gemm", in: "dedup") + " (default: auto)")) var gemm: GEMMChoice?
    @OptionGroup var common: CommonOptions
    @OptionGroup var tagging: TagOptions

    /// Options of fast mode given with exact mode are an error, not ignored.
    func validate() throws {
        let fastOnly = (partitions != nil ? ["--partitions"] : []) + (nprobe != nil ? ["--nprobe"] : []) + (recallSample != nil ? ["--recall-sample"] : []) + (seed != nil ? ["--seed"] : [])
        if mode == .exact, let first = fastOnly.first { throw ValidationError("\(first) applies to --mode fast only") }
        if mode == .fast, gemm != nil { throw ValidationError("--gemm applies to --mode exact only") }
    }

    func run() throws {
        common.warnAboutBLAS()
        var config = DedupConfig(thresholds: threshold.values)
        config.metric = metric
        config.mode = mode
        config.keep = keep
        config.partitions = partitions ?? config.partitions
        config.recallSample = recallSample ?? config.recallSample
        config.nprobe = nprobe ?? config.nprobe
        config.maxPairs = maxPairs
        config.memoryLimit = memoryLimit
        config.threads = common.threads
        config.seed = seed ?? config.seed
        config.gemm = gemm ?? config.gemm
        let result = try tagging.applying {
            try DedupOperation.run(
                input: DatasetReference(parsing: input, defaultDataset: "train"), output: output, config: config,
                writePairs: writePairs, writeKept: writeKept, logger: common.logger, progressStyle: common.progressStyle)
        }
        printLine(DedupOperation.summary(result, output: output) + (writeKept.map { "\n  kept rows -> \($0)" } ?? ""))
    }
}
