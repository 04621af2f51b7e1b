import SimjobBLAS
import SimjobKernels

/// The index types `simjob train` builds.
public enum IndexType: String, Codable, Sendable, CaseIterable {
    /// Inverted lists of product-quantized residuals (`IVFPQIndex`).
    case ivfpq
    /// Inverted lists of the vectors themselves, searched exactly (`IVFFlatIndex`).
    case ivfflat
    /// A hierarchical navigable small-world graph built from the k-NN graph (`HNSWIndex`).
    case hnsw
    /// Multi-table locality-sensitive hashing, candidates scored exactly (`LSHIndex`).
    case lsh
    /// A forest of random-projection trees, candidates scored exactly (`RPForestIndex`).
    case rptrees
}

/// Settings of index training (`simjob train`): IVF-PQ, or IVF-Flat (which uses the coarse
/// quantizer's settings only).
public struct IVFPQConfig: Codable, Sendable, Equatable {
    /// What to build. Default ivfpq.
    public var type: IndexType = .ivfpq
    /// Inverted lists: centroids of the coarse k-means. Default 1024.
    public var nlist: Int = 1024
    /// Sub-quantizers of the product quantizer; must divide the dimension. Default 16.
    public var m: Int = 16
    /// Bits per sub-quantizer code (1 to 8; 2^nbits centroids each). Default 8.
    public var nbits: Int = 8
    /// Distance; nil takes the input's `distance` attribute.
    public var metric: Metric? = nil
    /// Iterations of the coarse k-means. Default 10, as FAISS's IndexIVF.
    public var coarseIterations: Int = 10
    /// Iterations of each sub-quantizer's k-means. Default 25, as FAISS.
    public var pqIterations: Int = 25
    /// Training points per centroid, for both k-means (larger sets are subsampled, and the log
    /// says so). Default 256, as FAISS.
    public var maxPointsPerCentroid: Int = 256
    /// Seed of every random choice. Default 1234.
    public var seed: UInt64 = 1234
    /// Worker threads; nil uses every core.
    public var threads: Int? = nil
    /// Bytes of vectors that may be held in memory: a set that fits is read once, sampled and
    /// encoded from memory; a larger one is read twice (sample, then encode by blocks).
    /// Nil means half of physical memory.
    public var memoryLimit: ByteCount? = nil
    /// The product of the coarse k-means, of cell assignment and of PQ training: fp32, int8,
    /// bf16 or auto (see `GEMMChoice`); the index is the same with each. Default auto.
    public var gemm: GEMMChoice = .auto
    /// LSH: hash tables. Default 8.
    public var tables: Int = 8
    /// LSH: bits of each table's code (1 to 31); 0 picks about log2(rows / 32), within 4 to 20.
    /// Default 0.
    public var hashBits: Int = 0
    /// Random-projection trees: trees in the forest. Default 10.
    public var trees: Int = 10
    /// Random-projection trees: most rows in a leaf; 0 takes d + 2, as Annoy. Default 0.
    public var leafSize: Int = 0

    public init(nlist: Int = 1024, m: Int = 16, nbits: Int = 8) {
        self.nlist = nlist
        self.m = m
        self.nbits = nbits
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case type, nlist, m, nbits, metric, coarseIterations = "coarse_iterations", pqIterations = "pq_iterations"
        case maxPointsPerCentroid = "max_points_per_centroid", seed, threads, memoryLimit = "memory_limit", gemm
        case tables, hashBits = "hash_bits", trees, leafSize = "leaf_size"
    }
}

/// What training an IVF-PQ index did.
public struct IVFPQTrainStats: Sendable {
    public var vectors = 0
    public var trainingPoints = 0
    /// Reading the vectors from the file (decompression included).
    public var readSeconds = 0.0
    public var coarseSeconds = 0.0
    public var pqSeconds = 0.0
    public var encodeSeconds = 0.0
    public var totalSeconds = 0.0
    public var coarseObjective = 0.0
    /// Mean squared error of the residuals' reconstruction, on up to 16,384 training residuals.
    public var reconstructionError = 0.0
    /// `nlist * sum(size^2) / n^2` over the inverted lists.
    public var listImbalance = 0.0

    public init() {}
}

/// Settings of one IVF-PQ search.
public struct IVFPQSearchConfig: Codable, Sendable, Equatable {
    /// Neighbours per query. Default 10.
    public var k: Int = 10
    /// Inverted lists scanned per query. Default 16.
    public var nprobe: Int = 16
    /// Re-rank `refine * k` candidates by exact distances from the original vectors; 0 turns
    /// it off. Default 0.
    public var refine: Int = 0
    /// HNSW: the base layer's beam width; nil takes max(k, 10), as hnswlib. Other types ignore it.
    public var ef: Int? = nil
    /// LSH: buckets probed per table (its own, then by multi-probe order); nil takes 1. Other
    /// types ignore it.
    public var probes: Int? = nil
    /// Random-projection trees: candidates to collect (counted with repeats, as Annoy's
    /// `search_k`); nil takes trees x k. Other types ignore it.
    public var searchK: Int? = nil
    /// Worker threads; nil uses every core.
    public var threads: Int? = nil

    public init(k: Int = 10, nprobe: Int = 16, refine: Int = 0) {
        self.k = k
        self.nprobe = nprobe
        self.refine = refine
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case k, nprobe, refine, ef, probes, searchK = "search_k", threads
    }
}
