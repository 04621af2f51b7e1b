import SimjobKernels

/// Settings of the exact k-NN engine (`groundtruth`, `knn-graph --method exact`).
/// Job files decode the same struct, so every key here is also a job-file key.
public struct ExactKNNConfig: Codable, Sendable, Equatable {
    /// Neighbours per row. In a self-join (k-NN graph) a row is never its own neighbour, so `k`
    /// must be at most `n - 1`. Default 10.
    public var k: Int = 10
    /// Distance; nil takes the input file's `distance` attribute. Default nil.
    public var metric: Metric? = nil
    /// Worker threads; nil uses every core. BLAS runs single-threaded inside each worker.
    public var threads: Int? = nil
    /// Rows per tile. Default 256: with `columnBlock` 2048 a tile of scores is 2 MiB, about
    /// what one core's L2 plus its share of L3 holds while the scan reads it back.
    public var rowBlock: Int = 256
    /// Columns (base vectors) per tile. Default 2048.
    public var columnBlock: Int = 2048
    /// Self-joins compute each pair once and feed both rows' lists (half the GEMM work).
    /// Default true; false computes every (i, j) and (j, i) separately, for comparison.
    public var symmetric: Bool = true
    /// Bytes of vectors held in memory at once; beyond it the base is streamed from the file
    /// by chunks. Nil means half of physical memory. Neighbour lists (n x k x 8 bytes per
    /// worker) come on top of it.
    public var memoryLimit: Int? = nil

    public init(k: Int = 10, metric: Metric? = nil, threads: Int? = nil) {
        self.k = k
        self.metric = metric
        self.threads = threads
    }

    enum CodingKeys: String, CodingKey {
        case k, metric, threads, rowBlock = "row_block", columnBlock = "column_block", symmetric, memoryLimit = "memory_limit"
    }
}

/// What one run of the exact engine did.
public struct ExactKNNStats: Sendable {
    public var rows = 0
    public var baseRows = 0
    public var dimension = 0
    public var k = 0
    public var metric = Metric.euclidean
    public var threads = 1
    public var seconds = 0.0
    /// Floating-point operations the GEMMs performed (2 m n d per tile).
    public var gemmFlops = 0.0
    public var tiles = 0
    /// Base chunks read from the file; 1 when the whole set fit in memory.
    public var chunkLoads = 0
    public var streamed = false
    public var symmetric = false

    public var gflops: Double { seconds > 0 ? gemmFlops / seconds / 1e9 : 0 }
}

/// Neighbour lists of every row: `ids` and `distances` are row-major `rows x k`, nearest first,
/// ties broken by the smaller id; distances follow the ann-benchmarks conventions (`Metric`).
public struct NeighborTable: Sendable {
    public var rows: Int
    public var k: Int
    public var ids: [Int32]
    public var distances: [Float]

    public func ids(ofRow row: Int) -> ArraySlice<Int32> { ids[(row * k)..<((row + 1) * k)] }
    public func distances(ofRow row: Int) -> ArraySlice<Float> { distances[(row * k)..<((row + 1) * k)] }
}
