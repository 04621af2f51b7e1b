import Dispatch
import Foundation
import Logging
import SimjobBLAS
import SimjobKernels
import Synchronization

/// Settings of the approximate k-NN graph (`knn-graph --method approx`).
public struct ApproxKNNConfig: Codable, Sendable, Equatable {
    /// Neighbours per row. Default 10.
    public var k: Int = 10
    /// Distance; nil takes the input file's `distance` attribute.
    public var metric: Metric? = nil
    /// k-means cells the set is split into; 0 picks n / 1000 (at least 1). Default 0.
    public var partitions: Int = 0
    /// Cells each row searches: its own and the nearest others. More cells, higher recall;
    /// `nprobe = partitions` is exact. Default 8.
    public var nprobe: Int = 8
    /// Iterations of the partitioning k-means. Default 10.
    public var iterations: Int = 10
    /// Seed of the k-means. Default 1.
    public var seed: UInt64 = 1
    /// Worker threads; nil uses every core.
    public var threads: Int? = nil

    public init(k: Int = 10) { self.k = k }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case k, metric, partitions, nprobe, iterations, seed, threads
    }
}

/// What the approximate graph did.
public struct ApproxKNNStats: Sendable {
    public var rows = 0
    public var k = 0
    public var partitions = 0
    public var nprobe = 0
    public var seconds = 0.0
    /// Pairs scored per row, against n - 1 for an exact graph.
    public var candidatesPerRow = 0.0
}

/// An approximate all-pairs k-NN graph by inverted-file search of the set against itself.
///
/// A k-means splits the rows into cells. Every row searches the `nprobe` cells whose centroids
/// are nearest to it (its own among them), exactly: per cell, one sgemm of the rows probing it
/// against the cell's members, through the same fused scan as the exact engine, so distances
/// are exact and ties broken by id. A neighbour is missed only when it lies in a cell the row
/// did not probe. Work per row is about `nprobe x n / partitions` pairs instead of n.
public struct ApproxKNNGraph {
    public let config: ApproxKNNConfig
    public var logger: Logger?
    public var progressStyle: ProgressDisplay.Style = .silent

    public init(config: ApproxKNNConfig) { self.config = config }

    var threadCount: Int { max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount) }

    /// The graph of `vectors` (normalised already for angular).
    public func graph(_ vectors: FloatMatrix, metric: Metric) throws -> (NeighborTable, ApproxKNNStats) {
        let started = ProgressDisplay.now()
        let n = vectors.rows
        guard config.k >= 1, config.k <= n - 1 else {
            throw SimjobError("k = \(config.k) must be between 1 and n - 1 = \(n - 1) (a row is not its own neighbour)")
        }
        guard config.nprobe >= 1 else { throw SimjobError("nprobe must be at least 1") }
        let partitions = max(1, min(config.partitions > 0 ? config.partitions : n / 1000, n))
        let nprobe = min(config.nprobe, partitions)

        // Cells: k-means on the set, every row's nprobe nearest.
        var cellConfig = CellPartition.Config(cells: partitions, width: nprobe)
        cellConfig.iterations = config.iterations
        cellConfig.seed = config.seed
        cellConfig.threads = config.threads
        cellConfig.label = "graph partitions"
        let cells = try CellPartition(vectors, config: cellConfig, logger: logger)
        let members = cells.members, probers = cells.probers(nprobe: nprobe)
        let all = ExactKNN.Chunk(vectors: vectors, start: 0)

        // Cells are independent work items; each worker keeps its own lists (a row is reached
        // from several cells), merged at the end.
        BLASRuntime.setThreads(1)
        let workers = (0..<threadCount).map { _ in NeighborLists(rows: n, k: config.k) }
        defer { workers.dropFirst().forEach { $0.deallocate() } }
        let work = (0..<partitions).map { probers[$0].count * members[$0].count }
        let order = (0..<partitions).sorted { work[$0] > work[$1] }
        let progress = ProgressDisplay("approximate k-NN graph", total: work.reduce(0, +), unit: "rows",
                                       scale: Double(work.reduce(0, +)) / Double(n), style: progressStyle, logger: logger)
        try BlockedJoin.run(items: order.count, threads: workers.count, progress: progress, weight: { work[order[$0]] }) { position, worker in
            let cell = order[position]
            let columnIDs = members[cell], rowIDs = probers[cell]
            guard !columnIDs.isEmpty else { return }
            let lists = workers[worker.index]
            let columns = ExactKNN.Chunk(gathering: columnIDs, from: all), rows = ExactKNN.Chunk(gathering: rowIDs, from: all)
            rowIDs.withUnsafeBufferPointer { rowBuffer in
                columnIDs.withUnsafeBufferPointer { columnBuffer in
                    worker.tiles(rows, 0..<rowIDs.count, against: columns, 0..<columnIDs.count) { tile, rowStart, columnStart in
                        TileScan.scanGathered(tile, metric: metric, rowIDs: rowBuffer.baseAddress! + rowStart,
                                              columnIDs: columnBuffer.baseAddress! + columnStart, lists: lists)
                    }
                }
            }
        }
        progress.finish()
        try Cancellation.check()
        let target = workers[0]
        let starts = Array(stride(from: 0, to: n, by: 4096))
        DispatchQueue.concurrentPerform(iterations: starts.count) { index in
            let range = starts[index]..<min(starts[index] + 4096, n)
            for lists in workers.dropFirst() { target.merge(lists, rows: range) }
        }
        var stats = ApproxKNNStats()
        stats.rows = n
        stats.k = config.k
        stats.partitions = partitions
        stats.nprobe = nprobe
        stats.candidatesPerRow = Double(work.reduce(0, +)) / Double(n)
        let table = NeighborTable(converting: target, metric: metric)
        Invariants.check(table, idLimit: n, selfJoin: true, what: "approximate k-NN graph")
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }
}
