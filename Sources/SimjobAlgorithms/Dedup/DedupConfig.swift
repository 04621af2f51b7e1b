import SimjobBLAS
import SimjobKernels

/// Settings of `simjob dedup`.
public struct DedupConfig: Codable, Sendable, Equatable {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// Every pair of the set, by blocked GEMM over the upper triangle.
        case exact
        /// k-means partitions, each joined with itself and with the rows of neighbouring
        /// partitions that could lie within the threshold.
        case fast
    }

    public enum Keep: String, Codable, Sendable, CaseIterable {
        /// The lowest row id of each group.
        case first
        /// The member closest to its group's mean (ties: lowest id).
        case centroid
    }

    /// Distances in the metric (euclidean: plain L2; angular: 1 - cos; ip: -dot): two rows are
    /// duplicates when their distance is at most the threshold. Several thresholds are joined
    /// in one pass at the largest. Required.
    public var thresholds: [Double] = []
    /// Distance; nil takes the input's `distance` attribute.
    public var metric: Metric? = nil
    /// Default exact.
    public var mode: Mode = .exact
    /// Representative of each group. Default first.
    public var keep: Keep = .first
    /// Fast mode: k-means partitions; 0 picks n / 2000 (at least 1). Default 0.
    public var partitions: Int = 0
    /// Fast mode: cells each row joins besides its own. 0 takes every cell the triangle
    /// inequality cannot rule out (no pair lost, but in high dimensions few are ruled out); a
    /// number takes at most that many nearest cells within the bound, from both rows of a pair
    /// (approximate: the sampled pair recall shows what was missed). Default 0.
    public var nprobe: Int = 0
    /// Fast mode: rows whose exact pairs are compared with the fast join's to report pair
    /// recall in the log (seeded sample; 0 skips the check). Default 1,000.
    public var recallSample: Int = 1_000
    /// Refuse to continue past this many pairs (a threshold far above the duplicates' scale
    /// makes every row a neighbour of many). Default 200,000,000.
    public var maxPairs: Int = 200_000_000
    /// Memory the run may take, e.g. `8G`; nil is half of RAM. When the vectors and the
    /// partitions' state (`Dedup.memoryPlan`) are above it, the vectors go to a spill file
    /// beside the output (fast mode: laid out by partition, so a partition's rows are read
    /// together); a set whose state alone is above it is refused. The pairs are bounded by
    /// `max_pairs`. Default nil.
    public var memoryLimit: ByteCount? = nil
    /// Worker threads; nil uses every core.
    public var threads: Int? = nil
    /// Seed of the fast mode's k-means and of the recall sample. Default 1.
    public var seed: UInt64 = 1
    /// exact mode: the product of the join's tiles (fp32, int8, bf16 or auto, as for the exact
    /// k-NN engine); the pairs found are the same whichever it is. Default auto.
    public var gemm: GEMMChoice = .auto

    public init(thresholds: [Double] = []) { self.thresholds = thresholds }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case thresholds = "threshold", metric, mode, keep, partitions, nprobe, recallSample = "recall_sample"
        case maxPairs = "max_pairs", memoryLimit = "memory_limit", threads, seed, gemm
    }
}

/// The groups found at one threshold.
public struct DedupGroups: Sendable {
    public var threshold: Double
    /// Per row: -1 when it has no duplicate, else its group's id (groups numbered by their
    /// lowest row, from 0).
    public var group: [Int32]
    /// Per row: 1 to keep, 0 to drop. Exactly one member of every group is kept.
    public var keep: [UInt8]
    public var pairs: Int
    public var groupCount: Int
    public var rowsRemoved: Int
    /// Group sizes, largest first (at most 10).
    public var largestGroups: [(id: Int32, size: Int)]
    /// `histogram[s]` = number of groups of size s (index 0 and 1 unused).
    public var sizeHistogram: [Int]
}

/// What a dedup run found.
public struct DedupResult: Sendable {
    public var rows: Int
    public var metric: Metric
    public var mode: DedupConfig.Mode
    /// Pairs within the largest threshold, sorted by (i, j), i < j.
    public var pairs: [(Int32, Int32)]
    public var pairDistances: [Float]
    public var byThreshold: [DedupGroups]
    public var seconds: Double
    /// Fast mode: share of the exact pairs of the sampled rows that the fast join found.
    public var sampledPairRecall: Double?
    public var partitions: Int
    /// Bytes of vectors held in a spill file rather than in memory (0: none).
    public var spilledBytes = 0
}
