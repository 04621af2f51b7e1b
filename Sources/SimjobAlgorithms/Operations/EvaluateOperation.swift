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
        // Every output is checked and claimed before any work, so a plot or results folder that
        // collides with the report or an input fails at once; all are committed together.
        let plotPath = plot ?? (URL(fileURLWithPath: output).deletingPathExtension().path + ".svg")
        if let annBenchmarksDirectory {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: annBenchmarksDirectory, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw SimjobError("\(annBenchmarksDirectory): is a file; --ann-benchmarks-results needs a folder")
            }
        }
        let out = try AtomicOutputFile(output)
        let plotFile = try AtomicBytesFile(plotPath)
        let report = try Evaluation.run(dataset: dataset, indexPath: index, config: config, logger: logger)
        // The inputs are known now: refuse an output that is one before writing anything.
        try out.output.checkNotAnInput()
        try plotFile.output.checkNotAnInput()
        try EvaluationOutput.writeReport(report, to: out.file)
        try plotFile.write(Data(RecallQPSPlot.svg(report).utf8))
        var results: [AtomicOutputFile] = []
        if let annBenchmarksDirectory {
            results = try EvaluationOutput.writeANNBenchmarksResults(report, runs: config.runs, to: annBenchmarksDirectory)
        }
        try AtomicOutputFile.commit([out, plotFile] + results)
        let files = results.map(\.finalPath)
        return Outputs(report: report, plotPath: plotPath, resultFiles: files)
    }
}
