import Foundation
import SimjobAlgorithms
import Logging
import SimjobHDF5
import SimjobKernels

/// `simjob groundtruth` and `simjob knn-graph --method exact`.
public enum ExactOperations {
    /// Exact `neighbors`/`distances` of `test` against `train`; the output is a complete
    /// ann-benchmarks dataset (every other dataset and root attribute is copied over).
    public static func groundTruth(
        input: String, output: String, config: ExactKNNConfig, progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> ExactKNNStats {
        let base = try VectorSource(DatasetReference(path: input, dataset: "train"), threads: config.threads)
        let queries = try VectorSource(DatasetReference(path: input, dataset: "test"), threads: config.threads)
        let metric = try base.resolveMetric(config.metric)
        // Opened first, so a bad output path fails before any work.
        let out = try AtomicOutputFile(output)
        var engine = ExactKNN(config: config)
        engine.progressStyle = progressStyle
        let (table, stats) = try engine.search(queries: queries, base: base, metric: metric)

        for (name, value) in try base.file.attributes() where name != "distance" {
            try out.file.setAttribute(name, value)
        }
        try out.file.setAttribute("distance", .string(metric.rawValue))
        for name in base.file.datasetPaths() where name != "neighbors" && name != "distances" {
            try OutputWriting.copyDataset(name, from: base.file, to: out.file)
        }
        try OutputWriting.write(table, to: out.file, neighbors: "neighbors", distances: "distances")
        try out.commit()
        return stats
    }

    /// The exact k-NN graph of a dataset: `knn_graph/neighbors` and `knn_graph/distances`.
    public static func knnGraph(
        input: DatasetReference, output: String, config: ExactKNNConfig, progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> ExactKNNStats {
        let source = try VectorSource(input, threads: config.threads)
        let metric = try source.resolveMetric(config.metric)
        let out = try AtomicOutputFile(output)
        var engine = ExactKNN(config: config)
        engine.progressStyle = progressStyle
        let (table, stats) = try engine.graph(source, metric: metric)
        try writeGraph(table, to: out, metric: metric, method: "exact", source: input, settings: Provenance.describe(config))
        return stats
    }

    /// Group `knn_graph` (neighbors, distances, attributes metric, k, method, source and any
    /// `extra`) and the provenance, then the file is committed.
    static func writeGraph(
        _ table: NeighborTable, to out: AtomicOutputFile, metric: Metric, method: String, source: DatasetReference, settings: String,
        extra: [(String, AttributeValue)] = [], content: Provenance.Content? = nil
    ) throws {
        try KNNGraphFile.write(table, metric: metric, method: method, source: source, extra: extra, to: out.file)
        try Provenance.stamp(out.file, from: source, artifact: "knn_graph", settingsText: settings, content: content)
        try out.commit()
    }

    /// The approximate k-NN graph of a dataset, in the same layout (`method` = approx).
    ///
    /// `sharded` (a sharded graph's merge) gives the shards' shared work and fills the lists
    /// from their searches (see `ApproxKNNGraph.graph`); the rest is a whole run's.
    public static func approxKNNGraph(
        input: DatasetReference, output: String, config: ApproxKNNConfig, logger: Logger? = nil,
        progressStyle: ProgressDisplay.Style = .automatic,
        sharded: (prepared: ApproxKNNGraph.Prepared, searched: (NeighborLists, CellLayout) throws -> Int)? = nil
    ) throws -> ApproxKNNStats {
        let started = ProgressDisplay.now()
        let source = try VectorSource(input, threads: config.threads)
        let metric = try source.resolveMetric(config.metric)
        let spilling = try approxGraphSpills(source, config: config)
        let out = try AtomicOutputFile(output)
        let spill = spilling ? out.output.folder : nil
        if let spill { logger?.info("approximate graph: above the memory limit, the vectors go to spill files in \(spill)") }
        // The provenance's content comes from this read, before the rows are normalised.
        let (vectors, content) = try Provenance.readMatrix(source, metric: metric, spillingTo: spill, threads: config.threads)
        logger?.info("approximate graph: read \(source.rows) x \(source.dimension) in \(String(format: "%.2f", ProgressDisplay.now() - started)) s")
        var graph = ApproxKNNGraph(config: config)
        graph.logger = logger
        graph.progressStyle = progressStyle
        let (table, stats) = try graph.graph(vectors, metric: metric, reorderingInPlace: true, spillingTo: spill,
                                             prepared: sharded?.prepared, searched: sharded?.searched)
        var extra: [(String, AttributeValue)] = [
            ("partitions", .int(Int64(stats.partitions))), ("nprobe", .int(Int64(stats.nprobe))), ("rounds", .int(Int64(stats.rounds))),
        ]
        if let measured = stats.sampledRecall {
            extra += [("sampled_recall", .double(measured.recall)), ("sampled_recall_low", .double(measured.low)),
                      ("sampled_recall_high", .double(measured.high)), ("recall_sample", .int(Int64(measured.rows)))]
        }
        if let target = stats.recallTarget { extra.append(("recall_target", .double(target))) }
        extra += [("dimension", .int(Int64(stats.dimension))), ("candidates", .int(Int64(stats.candidates)))]
        if stats.spilledBytes > 0 { extra.append(("spilled_bytes", .int(Int64(stats.spilledBytes)))) }
        let writing = ProgressDisplay.now()
        try writeGraph(table, to: out, metric: metric, method: "approx", source: input, settings: Provenance.describe(config), extra: extra,
                       content: content)
        logger?.info("approximate graph: written in \(String(format: "%.2f", ProgressDisplay.now() - writing)) s")
        return stats
    }

    /// Whether an approximate graph of `source` spills its vectors to disk (its estimate is
    /// above the memory limit); refused in one line when its state alone is above it.
    static func approxGraphSpills(_ source: VectorSource, config: ApproxKNNConfig) throws -> Bool {
        try OutputWriting.spills(ApproxKNNGraph.memoryPlan(rows: source.rows, dimension: source.dimension, config: config), limit: config.memoryLimit) { plan, limit in
            "\(source.reference): an approximate graph of \(source.rows) x \(source.dimension) needs about \(formatBytes(plan.state)) besides the vectors (lists and join state), above the memory limit of \(formatBytes(limit)) (--memory-limit, job key memory_limit; default half of RAM); raise the limit, or use --method exact, which streams"
        }
    }
}
