import SimjobBLAS
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
    /// Rows and columns per tile: each tile is one `block x block` sgemm whose scores the
    /// fused scan reads back at once. Default 1024 (a 4 MiB tile): on the reference machine
    /// 1024 beat 256 x 2048 by 15 % at one thread, mostly through less sgemm packing.
    public var block: Int = ExactKNNConfig.defaultBlock

    /// The tile size of every blocked product whose settings have no block of their own (the
    /// approximate graph, dedup joins, k-means and IVF assignment, evaluation's exact reference).
    public static let defaultBlock = 1024
    /// Self-joins compute each pair once and feed both rows' lists (half the GEMM work).
    /// Default true; false computes every (i, j) and (j, i) separately, for comparison.
    public var symmetric: Bool = true
    /// Bytes of vectors held in memory at once; beyond it the base is streamed from the file
    /// by chunks. Nil means half of physical memory. Neighbour lists (n x k x 8 bytes per
    /// worker) come on top of it.
    public var memoryLimit: ByteCount? = nil
    /// The product tiles are computed with: fp32 (OpenBLAS sgemm), int8 or bf16 (oneDNN), or
    /// auto, the fastest on this CPU by a short calibration (`GEMMCalibration`). Results are
    /// identical whichever it is: reduced products only pre-select, with a provable slack, and
    /// every candidate is re-scored in fp32 (`ReducedRows`). Default auto.
    public var gemm: GEMMChoice = .auto

    public init(k: Int = 10, metric: Metric? = nil, threads: Int? = nil) {
        self.k = k
        self.metric = metric
        self.threads = threads
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case k, metric, threads, block, symmetric, memoryLimit = "memory_limit", gemm
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
    /// The product the tiles used (`fp32`, `int8`, `bf16`).
    public var gemm = "fp32"
    /// Pairs whose fp32 score was computed from the two vectors because they passed the
    /// filter (the reduced products' slack widens it).
    public var rescored = 0
    public var rescoredPerRow: Double { rows > 0 ? Double(rescored) / Double(rows) : 0 }

    public var gflops: Double { seconds > 0 ? gemmFlops / seconds / 1e9 : 0 }
}

/// Neighbour lists of every row, row-major `rows x k`, nearest first, ties broken by the
/// smaller id; distances follow the ann-benchmarks conventions (`Metric`). It owns the engine's
/// list buffers, converted in place, so the result costs no second copy.
public final class NeighborTable: @unchecked Sendable {
    public let rows: Int
    public let k: Int
    public let ids: UnsafeMutablePointer<Int32>
    public let distances: UnsafeMutablePointer<Float>
    private let lists: NeighborLists
    /// The object that owns `lists`' buffers, kept alive; nil when the table owns them.
    private let owner: AnyObject?

    /// Takes over `lists`, turning scores into reported distances (unless `metric` is nil, which
    /// keeps raw scores) and empty slots into id -1.
    init(converting lists: NeighborLists, metric: Metric?, owner: AnyObject? = nil) {
        self.lists = lists
        self.owner = owner
        rows = lists.rows
        k = lists.k
        ids = lists.ids
        distances = lists.scores
        for slot in 0..<(rows * k) {
            if ids[slot] == NeighborLists.emptyID {
                ids[slot] = -1
                distances[slot] = .infinity
            } else {
                if let metric { distances[slot] = metric.reportedDistance(fromScore: distances[slot]) }
            }
        }
    }

    deinit { if owner == nil { lists.deallocate() } }

    public func ids(ofRow row: Int) -> [Int32] { Array(UnsafeBufferPointer(start: ids + row * k, count: k)) }
    public func distances(ofRow row: Int) -> [Float] { Array(UnsafeBufferPointer(start: distances + row * k, count: k)) }
    public var idArray: [Int32] { Array(UnsafeBufferPointer(start: ids, count: rows * k)) }
    public var distanceArray: [Float] { Array(UnsafeBufferPointer(start: distances, count: rows * k)) }
}
