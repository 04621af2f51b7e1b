import Foundation
import Logging
import SimjobHDF5

/// `simjob evaluate`: the sweep, its report file, the plot next to it, ann-benchmarks results.
public enum EvaluateOperation {
    public struct Outputs: Sendable {
        public var report: EvaluationReport
        public var plotPath: String
        public var resultFiles: [String]
    }

    public static func run(
        dataset: String, index: String, config: EvaluationConfig, output: String, plot: String?,
        annBenchmarksDirectory: String?, logger: Logger? = nil
    ) throws -> Outputs {
        let out = try AtomicOutputFile(output)
        let report = try Evaluation.run(dataset: dataset, indexPath: index, config: config, logger: logger)
        // The inputs are known now: refuse an output that is one before writing anything beside it.
        try out.output.checkNotAnInput()
        try EvaluationOutput.writeReport(report, to: out.file)
        let plotPath = plot ?? (URL(fileURLWithPath: output).deletingPathExtension().path + ".svg")
        let svg = RecallQPSPlot.svg(report)
        // Written to a temporary name and renamed, like every output.
        try AtomicDataFile.write(Data(svg.utf8), to: plotPath)
        var files: [String] = []
        if let annBenchmarksDirectory {
            files = try EvaluationOutput.writeANNBenchmarksResults(report, runs: config.runs, to: annBenchmarksDirectory)
        }
        try out.commit()
        return Outputs(report: report, plotPath: plotPath, resultFiles: files)
    }
}
