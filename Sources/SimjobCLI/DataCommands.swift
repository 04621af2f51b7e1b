import ArgumentParser
import Foundation
import SimjobAlgorithms
import SimjobOperations
import SimjobBLAS
import SimjobKernels

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a clustered synthetic dataset in the ann-benchmarks layout, with exact ground truth.")

    @Argument(help: "Output file (.hdf5).")
    var output: String

    @Option(help: ArgumentHelp(ParameterHelp.help("n"))) var n = SyntheticConfig().n
    @Option(help: ArgumentHelp(ParameterHelp.help("queries"))) var queries = SyntheticConfig().queries
    @Option(help: ArgumentHelp(ParameterHelp.help("dim"))) var dim = SyntheticConfig().dim
    @Option(help: ArgumentHelp(ParameterHelp.help("metric", in: "generate"))) var metric = SyntheticConfig().metric
    @Option(help: ArgumentHelp(ParameterHelp.help("clusters"))) var clusters = SyntheticConfig().clusters
    @Option(help: ArgumentHelp(ParameterHelp.help("latent_dim"))) var latentDim = SyntheticConfig().latentDim
    @Option(help: ArgumentHelp(ParameterHelp.help("anisotropy"))) var anisotropy = SyntheticConfig().anisotropy
    @Option(help: ArgumentHelp(ParameterHelp.help("duplicates"))) var duplicates = SyntheticConfig().duplicates
    @Option(name: .customLong("k"), help: ArgumentHelp(ParameterHelp.help("k", in: "generate"))) var groundTruthK = SyntheticConfig().groundTruthK
    @Option(help: ArgumentHelp(ParameterHelp.help("seed"))) var seed = SyntheticConfig().seed
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.warnAboutBLAS()
        var config = SyntheticConfig()
        config.n = n
        config.queries = queries
        config.dim = dim
        config.metric = metric
        config.clusters = clusters
        config.duplicates = duplicates
        config.latentDim = latentDim
        config.anisotropy = anisotropy
        config.groundTruthK = groundTruthK
        config.seed = seed
        let summary = try Generate.run(config, output: output, threads: common.threads, progressStyle: common.progressStyle)
        var line = "wrote \(output): train \(n) x \(dim), test \(queries) x \(dim), \(metric), \(clusters) clusters"
        if duplicates > 0 { line += ", \(summary.plantedRows) planted duplicates in \(summary.plantedGroups) groups (dup_group)" }
        if let truth = summary.groundTruth { line += String(format: ", ground truth k=%d (%.2f s)", truth.k, truth.seconds) }
        printLine(line + String(format: " in %.2f s", summary.seconds))
    }
}

/// Options of the exact engine shared by groundtruth and knn-graph.
struct ExactOptions: ParsableArguments {
    @Option(help: ArgumentHelp(ParameterHelp.help("k"))) var k: Int
    @Option(help: ArgumentHelp(ParameterHelp.help("metric"))) var metric: Metric?
    @Option(help: ArgumentHelp(ParameterHelp.help("memory_limit")))
    var memoryLimit: ByteCount?
    @Option(help: ArgumentHelp(ParameterHelp.help("block") + " (default: \(ExactKNNConfig().block))")) var block: Int?
    @Flag(help: "Compute (i, j) and (j, i) separately in self-joins (slower; for comparison).")
    var noSymmetry = false
    @Option(help: ArgumentHelp(ParameterHelp.help("gemm") + " (default: auto)")) var gemm: GEMMChoice?

    func config(threads: Int?) -> ExactKNNConfig {
        var config = ExactKNNConfig(k: k, metric: metric, threads: threads)
        config.memoryLimit = memoryLimit
        config.block = block ?? config.block
        config.symmetric = !noSymmetry
        config.gemm = gemm ?? config.gemm
        return config
    }

    /// The options given that only the exact engine uses (an error with another method).
    var exactOnlyGiven: [String] {
        (block != nil ? ["--block"] : []) + (noSymmetry ? ["--no-symmetry"] : []) + (gemm != nil ? ["--gemm"] : [])
    }

    func validate() throws {
        if k < 1 { throw ValidationError("--k must be at least 1") }
        if let block, block < 16 { throw ValidationError("--block must be at least 16") }
    }
}

func describe(_ stats: ExactKNNStats, what: String) -> String {
    String(
        format: "%@: %d x %d rows, d=%d, k=%d, %@, %d threads: %.2f s, %.0f GFLOP/s of %@ GEMM, %.1f pairs re-scored per row%@%@, peak memory %@",
        what, stats.rows, stats.baseRows, stats.dimension, stats.k, stats.metric.rawValue, stats.threads,
        stats.seconds, stats.gflops, stats.gemm, stats.rescoredPerRow, stats.symmetric ? " (symmetric: each pair once)" : "",
        stats.streamed ? ", streamed in \(stats.chunkLoads) chunk reads" : "", formatBytes(ProcessMemory.peakResidentBytes))
}

struct GroundTruthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groundtruth",
        abstract: "Exact neighbors/distances of test against train; the output is a complete ann-benchmarks dataset.")

    @Argument(help: "Input ann-benchmarks file with train and test.") var input: String
    @Option(help: "Output file.") var output: String
    @OptionGroup var exact: ExactOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.warnAboutBLAS()
        let stats = try ExactOperations.groundTruth(
            input: input, output: output, config: exact.config(threads: common.threads), progressStyle: common.progressStyle)
        printLine(describe(stats, what: "ground truth") + " -> \(output)")
    }
}

struct KNNGraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "knn-graph",
        abstract: "Every row's k nearest other rows of the same set (self excluded).")

    enum Method: String, ExpressibleByArgument, CaseIterable { case exact, approx }

    @Argument(help: "FILE[:DATASET] (default dataset: train).") var input: String
    @Option(help: "Output file.") var output: String
    @Option(help: "exact (blocked GEMM over every pair) or approx (each row searches its nearest k-means cells).") var method = Method.exact
    @Option(help: ArgumentHelp(ParameterHelp.help("partitions", in: "knn_graph") + " (default: \(ApproxKNNConfig().partitions))")) var partitions: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("nprobe", in: "knn_graph") + " (default: \(ApproxKNNConfig().nprobe))")) var nprobe: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("rounds", in: "knn_graph") + " (default: \(ApproxKNNConfig().rounds))")) var rounds: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("recall", in: "knn_graph"))) var recall: Double?
    @Option(help: ArgumentHelp(ParameterHelp.help("recall_sample", in: "knn_graph") + " (default: \(ApproxKNNConfig().recallSample))")) var recallSample: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("dimension", in: "knn_graph") + " (default: \(ApproxKNNConfig().dimension))")) var dimension: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("candidates", in: "knn_graph") + " (default: \(ApproxKNNConfig().candidates))")) var candidates: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("expand", in: "knn_graph") + " (default: \(ApproxKNNConfig().expand))")) var expand: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("iterations", in: "knn_graph") + " (default: \(ApproxKNNConfig().iterations))")) var iterations: Int?
    @Option(help: ArgumentHelp(ParameterHelp.help("seed", in: "knn_graph") + " (default: \(ApproxKNNConfig().seed))")) var seed: UInt64?
    @OptionGroup var exact: ExactOptions
    @OptionGroup var common: CommonOptions
    @OptionGroup var tagging: TagOptions

    /// An option of one method given with the other is an error, not ignored.
    func validate() throws {
        let given: [(String, Bool)] = [
            ("--partitions", partitions != nil), ("--nprobe", nprobe != nil), ("--iterations", iterations != nil), ("--seed", seed != nil),
            ("--rounds", rounds != nil), ("--recall", recall != nil), ("--recall-sample", recallSample != nil),
            ("--dimension", dimension != nil), ("--candidates", candidates != nil), ("--expand", expand != nil),
        ]
        let approxOnly = given.filter { $0.1 }.map { $0.0 }
        if method == .exact, let first = approxOnly.first {
            throw ValidationError("\(first) applies to --method approx only")
        }
        if method == .approx, let first = exact.exactOnlyGiven.first {
            throw ValidationError("\(first) applies to --method exact only")
        }
        if recall != nil, let hand = nprobe != nil ? "--nprobe" : rounds != nil ? "--rounds" : nil {
            throw ValidationError("\(hand) and --recall exclude each other: with a target the engine picks nprobe and the rounds")
        }
    }

    func run() throws {
        common.warnAboutBLAS()
        let reference = DatasetReference(parsing: input, defaultDataset: "train")
        if method == .approx {
            var config = ApproxKNNConfig(k: exact.k)
            config.metric = exact.metric
            config.partitions = partitions ?? config.partitions
            config.nprobe = nprobe ?? config.nprobe
            config.iterations = iterations ?? config.iterations
            config.seed = seed ?? config.seed
            config.rounds = rounds ?? config.rounds
            config.recall = recall
            config.recallSample = recallSample ?? config.recallSample
            config.dimension = dimension ?? config.dimension
            config.candidates = candidates ?? config.candidates
            config.expand = expand ?? config.expand
            config.memoryLimit = exact.memoryLimit
            config.threads = common.threads
            let stats = try tagging.applying {
                try ExactOperations.approxKNNGraph(input: reference, output: output, config: config, logger: common.logger, progressStyle: common.progressStyle)
            }
            printLine("approximate k-NN graph: " + stats.summary + " -> \(output)")
            return
        }
        let stats = try tagging.applying {
            try ExactOperations.knnGraph(input: reference, output: output, config: exact.config(threads: common.threads), progressStyle: common.progressStyle)
        }
        printLine(describe(stats, what: "k-NN graph") + " -> \(output)")
    }
}
