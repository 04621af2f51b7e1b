import Foundation
import SimjobAlgorithms
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
        try run(dataset: dataset, indexes: [index], config: config, output: output, plot: plot, annBenchmarksDirectory: annBenchmarksDirectory, logger: logger)
    }

    /// One sweep over several indexes of the same set: one report, one plot with a line per
    /// index and search mode, one ann-benchmarks results tree.
    public static func run(
        dataset: String, indexes: [String], config: EvaluationConfig, output: String, plot: String?,
        annBenchmarksDirectory: String?, logger: Logger? = nil
    ) throws -> Outputs {
        guard !indexes.isEmpty else { throw SimjobError("evaluate: give at least one --index") }
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
        try Evaluation.validate(config)
        let first = try loadInputs(dataset: dataset, indexPath: indexes[0], config: config)
        var all = [first]
        for path in indexes.dropFirst() {
            // The vectors, queries and ground truth of the first, once; each index checked
            // against them.
            let (index, buildSeconds) = try loadIndex(path)
            guard index.count == first.base.rows, index.dimension == first.base.columns else {
                throw SimjobError("\(path): holds \(index.count) vectors of dimension \(index.dimension), but \(dataset):train is \(first.base.rows) x \(first.base.columns)")
            }
            guard index.metric == first.index.metric else {
                throw SimjobError("\(path): built for '\(index.metric)', but \(indexes[0]) for '\(first.index.metric)'; one sweep compares indexes of one metric")
            }
            var inputs = first
            inputs.index = index
            inputs.buildSeconds = buildSeconds
            all.append(inputs)
        }
        let report = try Evaluation.run(all, config: config, logger: logger)
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

    /// An index and the build time `train` recorded with it (0 when absent).
    static func loadIndex(_ path: String) throws -> (any SearchableIndex, Double) {
        (try QuantizationOperations.loadIndex(path), try HDF5File.open(path).attribute("build_seconds", of: "index")?.doubleValue ?? 0)
    }

    /// Reads what a sweep runs on: the index (and its build time), `train` prepared for the
    /// index's metric, `test` raw and prepared, and the dataset's ground truth, checked against
    /// one another.
    public static func loadInputs(dataset path: String, indexPath: String, config: EvaluationConfig) throws -> EvaluationInputs {
        let (index, buildSeconds) = try loadIndex(indexPath)
        let base = try VectorSource(DatasetReference(path: path, dataset: "train"), threads: config.threads)
        let querySource = try VectorSource(DatasetReference(path: path, dataset: "test"), threads: config.threads)
        guard base.rows == index.count, base.dimension == index.dimension else {
            throw SimjobError("\(path):train has shape (\(base.rows), \(base.dimension)) but the index holds \(index.count) vectors of dimension \(index.dimension)")
        }
        let truth = try GroundTruth(file: base.file, queries: querySource.rows, k: config.k)
        if let fileMetric = try base.fileMetric(), fileMetric != index.metric {
            throw SimjobError("\(path) says distance '\(fileMetric)' but the index was built for '\(index.metric)'")
        }
        return EvaluationInputs(
            dataset: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent, index: index, buildSeconds: buildSeconds,
            base: try base.readMatrix(0..<base.rows, metric: index.metric), rawQueries: try querySource.readMatrix(0..<querySource.rows),
            preparedQueries: try querySource.readMatrix(0..<querySource.rows, metric: index.metric), truth: truth)
    }
}

extension GroundTruth {
    /// The ground truth of a dataset file: `neighbors` and `distances`, (queries, K) with K >= k.
    init(file: HDF5File, queries: Int, k: Int) throws {
        for name in ["neighbors", "distances"] where !file.isDataset(name) {
            throw SimjobError("\(file.path): no '\(name)' dataset; compute ground truth with: simjob groundtruth \(file.path) --k \(max(k, 100)) --output FILE")
        }
        let neighbors = try file.dataset("neighbors"), distances = try file.dataset("distances")
        guard neighbors.shape.count == 2, neighbors.shape == distances.shape, neighbors.rows == queries else {
            throw SimjobError("\(file.path): neighbors \(neighbors.shapeDescription) and distances \(distances.shapeDescription) must both be (\(queries), K)")
        }
        guard neighbors.columns >= k else {
            throw SimjobError("\(file.path):neighbors has \(neighbors.columns) columns, fewer than k = \(k)")
        }
        self.init(ids: try neighbors.readAll(as: Int64.self).map { Int32(truncatingIfNeeded: $0) },
                  distances: try distances.readAll(as: Float.self), width: neighbors.columns)
    }
}
