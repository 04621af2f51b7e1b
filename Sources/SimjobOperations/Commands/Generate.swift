import Foundation
import SimjobAlgorithms
import Logging
import SimjobHDF5
import SimjobKernels

/// `simjob generate`: writes a synthetic ann-benchmarks dataset, ground truth included.
public enum Generate {
    public struct Summary: Sendable {
        public var path: String
        public var plantedGroups: Int
        public var plantedRows: Int
        public var groundTruth: ExactKNNStats?
        public var seconds: Double
    }

    public static func run(
        _ config: SyntheticConfig, output: String, threads: Int? = nil, progressStyle: ProgressDisplay.Style = .automatic,
        logger: Logger? = nil
    ) throws -> Summary {
        let started = ProgressDisplay.now()
        let data = try SyntheticDataset(config)
        let out = try AtomicOutputFile(output)
        let progress = ProgressDisplay("generate", total: config.n + config.queries, unit: "rows", style: progressStyle, logger: logger)
        try out.file.setAttribute("distance", .string(config.metric.rawValue))
        try out.file.setAttribute("point_type", .string("float"))
        try out.file.setAttribute("generator", .string("simjob generate"))
        try out.file.setAttribute("seed", .int(Int64(bitPattern: config.seed)))
        try out.file.setAttribute("clusters", .int(Int64(config.clusters)))
        try out.file.setAttribute("latent_dim", .int(Int64(config.latentDim)))
        try out.file.setAttribute("duplicate_fraction", .double(config.duplicates))
        try OutputWriting.writeRows("train", rows: config.n, dim: config.dim, to: out.file, progress: progress) {
            data.trainRows($0, into: $1)
        }
        try OutputWriting.writeRows("test", rows: config.queries, dim: config.dim, to: out.file, progress: progress) {
            data.queryRows($0, into: $1)
        }
        progress.finish()
        let planted = data.sourceOf.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
        if config.duplicates > 0 {
            try out.file.write("dup_group", data.duplicateGroup, shape: [config.n])
            try out.file.setAttribute("duplicate_noise", .double(0.01))
        }

        // Ground truth from the finished vectors, read back from the temporary file, so it is
        // exactly what any reader of the file sees (and streams when the set is large).
        var truthStats: ExactKNNStats?
        let k = min(config.groundTruthK, config.n)
        if k > 0 && config.queries > 0 {
            try out.closeForReading()
            var engineConfig = ExactKNNConfig(k: k, metric: config.metric, threads: threads)
            engineConfig.symmetric = true
            var engine = ExactKNN(config: engineConfig)
            engine.progressStyle = progressStyle
            // The readers must be gone before the file is opened for writing again.
            let (table, stats) = try {
                let queries = try VectorSource(DatasetReference(path: out.temporaryPath, dataset: "test"), threads: threads)
                let base = try VectorSource(DatasetReference(path: out.temporaryPath, dataset: "train"), threads: threads)
                return try engine.search(queries: queries, base: base, metric: config.metric)
            }()
            truthStats = stats
            try out.reopen()
            try OutputWriting.write(table, to: out.file, neighbors: "neighbors", distances: "distances")
        }
        try out.commit()
        return Summary(
            path: output, plantedGroups: data.groupCount, plantedRows: planted,
            groundTruth: truthStats, seconds: ProgressDisplay.now() - started)
    }
}
