import Foundation
import SimjobAlgorithms
import SimjobKernels

/// The kinds of step a job can run: the commands, with the same options.
public enum StepKind: String, CaseIterable, Sendable {
    case generate
    case groundtruth
    case knnGraph = "knn_graph"
    case train
    case search
    case evaluate
    case dedup

    /// Keys of the step itself (which files it works on), besides its settings struct's keys.
    var ownKeys: [(key: String, help: String, example: String)] {
        switch self {
        case .generate:
            return []
        case .groundtruth:
            return [("input", "ann-benchmarks file with train and test: a step, a named input or a path", "data")]
        case .knnGraph:
            return [("input", "the set: a step, a named input or a path", "data"),
                    ("dataset", "dataset inside the input", "train"),
                    ("method", "exact, or approx (each row searches its nprobe nearest k-means cells)", "exact")]
        case .train:
            return [("input", "the set to index: a step, a named input or a path", "data"),
                    ("dataset", "dataset inside the input", "train")]
        case .search:
            return [("index", "an index: a train step or a path", "index"),
                    ("input", "file holding the queries: a step, a named input or a path", "data"),
                    ("dataset", "dataset of queries inside the input", "test"),
                    ("base", "original vectors for refine (default: the index's source)", "null")]
        case .evaluate:
            return [("input", "ann-benchmarks file with train, test, neighbors, distances", "data"),
                    ("index", "an index: a train step or a path", "index"),
                    ("ann_benchmarks_results", "also write ann-benchmarks result files (folder STEP-ann-benchmarks)", "false"),
                    ("graph", "instead of an index: a k-NN graph to score (a knn_graph step or a path)", "null"),
                    ("truth", "with graph: the exact graph (default: exact neighbours of the sample, computed)", "null"),
                    ("sample", "with graph: rows scored, drawn with a fixed seed (null: every row)", "null")]
        case .dedup:
            return [("input", "the set: a step, a named input or a path", "data"),
                    ("dataset", "dataset inside the input", "train"),
                    ("write_pairs", "also write dedup/pairs and dedup/pair_distances", "false"),
                    ("write_kept", "also write STEP-kept.hdf5 with only the kept rows (refer to it as STEP.kept)", "false")]
        }
    }

    /// The settings struct's keys.
    var settingsKeys: [String] {
        switch self {
        case .generate: return SyntheticConfig.jobKeys
        case .groundtruth: return ExactKNNConfig.jobKeys
        case .knnGraph: return ExactKNNConfig.jobKeys + ApproxKNNConfig.jobKeys.filter { !ExactKNNConfig.jobKeys.contains($0) }
        case .train: return IVFPQConfig.jobKeys
        case .search: return IVFPQSearchConfig.jobKeys
        case .evaluate: return EvaluationConfig.jobKeys
        case .dedup: return DedupConfig.jobKeys
        }
    }

    var allKeys: [String] { ownKeys.map(\.key) + settingsKeys }

    /// What the step does, for `simjob schema`.
    var summary: String {
        switch self {
        case .generate: return "a clustered synthetic dataset with exact ground truth (simjob generate)"
        case .groundtruth: return "exact neighbors/distances of test against train (simjob groundtruth)"
        case .knnGraph: return "every row's k nearest other rows (simjob knn-graph)"
        case .train: return "an IVF-PQ index (simjob train)"
        case .search: return "k nearest neighbours of the queries from an index (simjob search)"
        case .evaluate: return "recall / QPS sweep with a recall-vs-QPS plot (simjob evaluate)"
        case .dedup: return "near-duplicate groups and keep-mask (simjob dedup)"
        }
    }

    /// Help for each settings key, for `simjob schema`.
    static let settingsHelp: [String: String] = [
        "n": "rows of train", "queries": "rows of test", "dim": "dimension", "clusters": "Gaussian clusters",
        "latent_dim": "clusters vary within random subspaces of this dimension (0: isotropic)",
        "duplicates": "fraction of train rows planted as near-duplicates", "seed": "random seed",
        "k": "neighbours per row or query", "metric": "euclidean, angular or ip (null: the input's distance attribute)",
        "threads": "worker threads (null: every core)", "block": "rows and columns per GEMM tile",
        "symmetric": "compute each pair once in self-joins", "memory_limit": "vectors held in memory at once (e.g. 512M; null: half of RAM)",
        "nlist": "inverted lists", "m": "PQ sub-quantizers (must divide the dimension)", "nbits": "bits per PQ code (1 to 8)",
        "coarse_iterations": "coarse k-means iterations", "pq_iterations": "PQ k-means iterations",
        "max_points_per_centroid": "k-means training points per centroid (larger sets are subsampled)",
        "nprobe": "inverted lists (cells) scanned per query or row (evaluate: a list)", "refine": "re-rank refine x k candidates exactly (evaluate: a list)",
        "runs": "batch runs per setting (the fastest counts)", "latency_queries": "queries timed one at a time",
        "include_exact": "also evaluate exact search", "threshold": "distance threshold(s): one number or a list",
        "mode": "exact or fast", "keep": "first or centroid", "partitions": "k-means cells of the fast or approximate method (0: automatic)",
        "recall_sample": "fast mode rows checked against exact for the logged pair recall",
        "max_pairs": "refuse to go past this many pairs",
        "iterations": "k-means iterations of the approximate graph's cells",
    ]

    /// Default settings, encoded, for `simjob schema`.
    var defaultSettings: Encodable {
        switch self {
        case .generate: return SyntheticConfig()
        case .groundtruth: return ExactKNNConfig()
        case .knnGraph: return KNNGraphDefaults()
        case .train: return IVFPQConfig()
        case .search: return IVFPQSearchConfig()
        case .evaluate: return EvaluationConfig()
        case .dedup: return DedupConfig()
        }
    }
}

/// The knn_graph step's defaults: the exact engine's settings and the approximate method's.
struct KNNGraphDefaults: Encodable {
    func encode(to encoder: Encoder) throws {
        try ExactKNNConfig().encode(to: encoder)
        try ApproxKNNConfig().encode(to: encoder)
    }
}
