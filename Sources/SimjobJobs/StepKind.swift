import Foundation
import SimjobAlgorithms
import SimjobKernels

/// The kinds of step a job can run: the commands, with the same options. Each is defined in its
/// own file under `Steps/`; a new kind is a case here and its line in `definition`.
public enum StepKind: String, CaseIterable, Sendable {
    case generate
    case groundtruth
    case knnGraph = "knn_graph"
    case train
    case search
    case evaluate
    case dedup

    /// The definition of the kind: keys, defaults, planning and running (`Steps/`).
    var definition: any StepDefinition.Type {
        switch self {
        case .generate: return GenerateStep.self
        case .groundtruth: return GroundTruthStep.self
        case .knnGraph: return KNNGraphStep.self
        case .train: return TrainStep.self
        case .search: return SearchStep.self
        case .evaluate: return EvaluateStep.self
        case .dedup: return DedupStep.self
        }
    }

    /// Keys of the step itself (which files it works on), besides its settings struct's keys.
    var ownKeys: [(key: String, help: String, example: String)] { definition.ownKeys }

    /// The settings struct's keys.
    var settingsKeys: [String] { definition.settingsKeys }

    var allKeys: [String] { ownKeys.map(\.key) + settingsKeys }

    /// What the step does, for `simjob schema`.
    var summary: String { definition.summary }

    /// Default settings, encoded, for `simjob schema`.
    var defaultSettings: Encodable { definition.defaultSettings }

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
}
