import ArgumentParser
import Foundation
import SimjobAlgorithms
import SimjobOperations

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Recall / queries-per-second sweeps of an index (ann-benchmarks definitions), or the recall of a k-NN graph.",
        discussion: """
            Index sweep: simjob evaluate IN.hdf5 --index INDEX.hdf5 [--index OTHER.hdf5 ...] --k K --nprobe 1,4,16 [--refine 0,10] --output REPORT.hdf5
            Graph recall: simjob evaluate --graph GRAPH.hdf5 [--truth TRUTH.hdf5] [--sample N] [--vectors FILE:DATASET]
            (without --truth, the exact neighbours of the sampled rows are computed on the spot)
            """)

    @Argument(help: "ann-benchmarks dataset with train, test, neighbors, distances.") var input: String?
    @Option(help: "Index written by simjob train; repeat it to sweep several indexes of the same set into one report and plot.") var index: [String] = []
    @Option(help: ArgumentHelp(ParameterHelp.help("k", in: "evaluate"))) var k = EvaluationConfig().k
    @Option(help: ArgumentHelp(ParameterHelp.help("nprobe", in: "evaluate"))) var nprobe = CommaSeparated(values: EvaluationConfig().nprobe)
    @Option(help: ArgumentHelp(ParameterHelp.help("refine", in: "evaluate"))) var refine = CommaSeparated(values: EvaluationConfig().refine)
    @Option(help: ArgumentHelp(ParameterHelp.help("ef", in: "evaluate"))) var ef = CommaSeparated(values: EvaluationConfig().ef)
    @Option(help: ArgumentHelp(ParameterHelp.help("probes", in: "evaluate"))) var probes = CommaSeparated(values: EvaluationConfig().probes)
    @Option(help: ArgumentHelp(ParameterHelp.help("search_k", in: "evaluate"))) var searchK = CommaSeparated(values: EvaluationConfig().searchK)
    @Option(name: .customLong("param"), help: ArgumentHelp("NAME=V1,V2,... for a search parameter (nprobe, refine, ef, probes, search_k); repeatable, overrides the option of that name.", valueName: "NAME=V1,V2,..."))
    var parameters: [String] = []
    @Option(help: "Report file (group evaluation); the plot goes next to it as .svg.") var output: String?
    @Option(help: "Where to write the recall-vs-QPS plot (default: the report's name with .svg).") var plot: String?
    @Option(help: "Also write ann-benchmarks result files under this folder.") var annBenchmarksResults: String?
    @Option(help: ArgumentHelp(ParameterHelp.help("runs"))) var runs = EvaluationConfig().runs
    @Option(help: ArgumentHelp(ParameterHelp.help("latency_queries"))) var latencyQueries = EvaluationConfig().latencyQueries
    @Flag(help: ArgumentHelp(ParameterHelp.help("include_exact"))) var exact = false
    @Option(help: "Approximate k-NN graph to score (with --truth).") var graph: String?
    @Option(help: "Exact k-NN graph to score against (default: compute the sampled rows' exact neighbours).") var truth: String?
    @Option(help: "Rows of the graph to score, drawn with a fixed seed (default: all).") var sample: Int?
    @Option(help: "Vectors of the graphs (default: the truth graph's source attribute).") var vectors: String?
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if graph != nil || truth != nil {
            guard graph != nil else { throw ValidationError("--truth needs --graph") }
            if truth == nil && sample == nil { throw ValidationError("without --truth, give --sample N (rows whose exact neighbours are computed)") }
        } else {
            guard input != nil, !index.isEmpty, output != nil else {
                throw ValidationError("give IN.hdf5 --index INDEX.hdf5 --output REPORT.hdf5, or --graph G [--truth T] [--sample N]")
            }
        }
        if k < 1 { throw ValidationError("--k must be at least 1") }
    }

    func run() throws {
        if let graph {
            let result = try GraphEvaluation.run(
                graph: graph, truth: truth, input: vectors.map { DatasetReference(parsing: $0, defaultDataset: "train") },
                sample: sample, threads: common.threads)
            printLine(String(format: "graph %@ against %@: %d of %d rows, k=%d, %@: recall %.4f, epsilon recall %.4f, id recall %.4f",
                             graph, truth ?? "exact neighbours computed here", result.sampled, result.rows, result.k, result.metric.rawValue,
                             result.scores.knn, result.scores.epsilon, result.scores.ids))
            return
        }
        common.warnAboutBLAS()
        var config = EvaluationConfig()
        config.k = k
        config.nprobe = nprobe.values
        config.refine = refine.values
        config.ef = ef.values
        config.probes = probes.values
        config.searchK = searchK.values
        for parameter in parameters {
            let parts = parameter.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let values = CommaSeparated<Int>(argument: parts[1])?.values else {
                throw SimjobError("--param '\(parameter)': expected NAME=V1,V2,... with whole numbers")
            }
            switch parts[0] {
            case "nprobe": config.nprobe = values
            case "refine": config.refine = values
            case "ef": config.ef = values
            case "probes": config.probes = values
            case "search_k": config.searchK = values
            default: throw SimjobError("--param '\(parameter)': unknown parameter '\(parts[0])' (nprobe, refine, ef, probes, search_k)")
            }
        }
        config.runs = runs
        config.latencyQueries = latencyQueries
        config.includeExact = exact
        config.threads = common.threads
        let outputs = try EvaluateOperation.run(
            dataset: input!, indexes: index, config: config, output: output!, plot: plot,
            annBenchmarksDirectory: annBenchmarksResults, logger: common.logger)
        printLine(EvaluationOutput.table(outputs.report))
        printLine("report: \(output!) (group evaluation); plot: \(outputs.plotPath)"
                  + (outputs.resultFiles.isEmpty ? "" : "; \(outputs.resultFiles.count) ann-benchmarks result files under \(annBenchmarksResults!)"))
    }
}
