import Foundation
import Logging
import SimjobCore
import SimjobKernels

/// A forest of random-projection trees searched with one priority queue over all trees: the
/// construction and search of Annoy (Bernhardsson, spotify/annoy).
///
/// Each tree splits its rows recursively by a hyperplane between two points found by a short
/// two-means over the node's rows (Annoy's `two_means`: two random rows, then 200 steps that
/// each move the nearer centre towards one more random row). The hyperplane is the centres'
/// perpendicular bisector (through the origin for angular data, whose rows are unit length). A
/// node of at most `leafSize` rows is a leaf; a split that sends more than 95 % of the rows to
/// one side is tried again (3 times), then replaced by a random half split. Trees are built
/// in parallel, one work item each.
///
/// A query starts every tree's root in one max-priority queue and repeatedly opens the most
/// promising node: a split's children get the parent's priority capped by the query's signed
/// margin to the hyperplane (positive side) or its negation; a leaf's rows become candidates.
/// It stops when `searchK` candidates (counted with repeats, as Annoy does) are found; the
/// distinct candidates are scored exactly and the best `k` kept.
public final class RPForestIndex: SearchableIndex, @unchecked Sendable {
    public let metric: Metric
    public let dimension: Int
    public let trees: Int
    public let leafSize: Int
    /// Split nodes of every tree: hyperplane normals (`splits x d`), offsets, and children.
    /// A child `c >= 0` is split node `c` (always later than its parent); `c < 0` is leaf
    /// `-c - 1`.
    public let normals: FloatMatrix
    public let offsets: [Float]
    public let children: [Int32]
    /// Per tree, its root (encoded as a child).
    public let roots: [Int32]
    /// Leaf `l`'s rows are `leafRows[leafStarts[l] ..< leafStarts[l + 1]]`.
    public let leafStarts: [Int32]
    public let leafRows: [Int32]
    /// `count x d`, by row id (unit length for angular).
    public let vectors: FloatMatrix
    public let source: String

    public var count: Int { vectors.rows }
    public var nlist: Int { 0 }
    public var splits: Int { offsets.count }
    public var sizeInBytes: Int { vectors.byteCount + normals.byteCount + offsets.count * 4 + children.count * 4 + roots.count * 4 + leafStarts.count * 4 + leafRows.count * 4 }
    public var summary: String { "RP-trees trees=\(trees) leaf_size=\(leafSize)" }
    public var algorithm: String { "simjob-rptrees" }
    public func settingName(refine: Int) -> String { "RPTrees(trees=\(trees))" }

    public init(metric: Metric, trees: Int, leafSize: Int, normals: FloatMatrix, offsets: [Float], children: [Int32], roots: [Int32],
                leafStarts: [Int32], leafRows: [Int32], vectors: FloatMatrix, source: String) {
        precondition(normals.rows == offsets.count && children.count == 2 * offsets.count && roots.count == trees)
        self.metric = metric
        self.dimension = vectors.columns
        self.trees = trees
        self.leafSize = leafSize
        self.normals = normals
        self.offsets = offsets
        self.children = children
        self.roots = roots
        self.leafStarts = leafStarts
        self.leafRows = leafRows
        self.vectors = vectors
        self.source = source
    }

    /// Annoy's leaf size: as many row ids as fit in a node, d + 2.
    public static func automaticLeafSize(dimension: Int) -> Int { dimension + 2 }

    /// One tree under construction: split nodes in preorder, leaves appended as found.
    struct TreeParts {
        var normals: [Float] = []
        var offsets: [Float] = []
        var children: [Int32] = []
        var leafStarts: [Int32] = [0]
        var leafRows: [Int32] = []
        var root: Int32 = -1
    }

    /// Builds `config.trees` trees over `source` (read whole, normalised for angular).
    public static func train(
        _ source: RowSource, metric: Metric, config: IVFPQConfig, logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .silent
    ) throws -> (RPForestIndex, IVFPQTrainStats) {
        let started = ProgressDisplay.now()
        let n = source.rows, d = source.dimension
        let trees = config.trees
        guard (1...4096).contains(trees) else { throw SimjobError("rptrees: trees = \(trees) must be between 1 and 4096") }
        guard config.leafSize >= 0 else { throw SimjobError("rptrees: leaf_size = \(config.leafSize) must be 0 (automatic) or more") }
        let leafSize = config.leafSize > 0 ? config.leafSize : automaticLeafSize(dimension: d)
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        var stats = IVFPQTrainStats()
        stats.vectors = n
        let readStarted = ProgressDisplay.now()
        let vectors = try source.readMatrix(0..<n, metric: metric)
        stats.readSeconds = ProgressDisplay.now() - readStarted
        let building = ProgressDisplay.now()
        let parts = UnsafeMutablePointer<TreeParts>.allocate(capacity: trees)
        parts.initialize(repeating: TreeParts(), count: trees)
        defer { parts.deinitialize(count: trees); parts.deallocate() }
        let shared = UnsafeSendable(parts)
        let progress = ProgressDisplay("rptrees", total: trees, unit: "trees", style: progressStyle, logger: logger)
        try BlockedJoin.run(items: trees, threads: threads, block: 1) { tree, _ in
            var builder = TreeBuilder(vectors: vectors, metric: metric, leafSize: leafSize,
                                      rng: SeededGenerator(seed: config.seed, stream: 0x7EE0 &+ UInt64(tree)))
            shared.value[tree] = builder.build(rows: n)
            progress.advance()
        }
        progress.finish()
        // The trees side by side: split and leaf numbers shift by the trees before.
        var normals: [Float] = [], offsets: [Float] = [], children: [Int32] = [], roots: [Int32] = []
        var leafStarts: [Int32] = [0], leafRows: [Int32] = []
        for tree in 0..<trees {
            let part = parts[tree]
            let splitBase = Int32(offsets.count), leafBase = Int32(leafStarts.count - 1), rowBase = Int32(leafRows.count)
            func shifted(_ child: Int32) -> Int32 { child >= 0 ? child + splitBase : child - leafBase }
            normals += part.normals
            offsets += part.offsets
            children += part.children.map(shifted)
            roots.append(shifted(part.root))
            leafStarts += part.leafStarts.dropFirst().map { $0 + rowBase }
            leafRows += part.leafRows
        }
        let normalMatrix = FloatMatrix(rows: offsets.count, columns: d, values: normals)
        let index = RPForestIndex(metric: metric, trees: trees, leafSize: leafSize, normals: normalMatrix, offsets: offsets, children: children,
                                  roots: roots, leafStarts: leafStarts, leafRows: leafRows, vectors: vectors, source: source.name)
        stats.encodeSeconds = ProgressDisplay.now() - building
        stats.totalSeconds = ProgressDisplay.now() - started
        logger?.info("rptrees: \(trees) trees over \(n) rows, leaves of at most \(leafSize) rows: \(offsets.count / trees) splits and \((leafStarts.count - 1) / trees) leaves per tree")
        return (index, stats)
    }

    /// Builds one tree (recursion by an explicit stack: degenerate data can make deep trees).
    struct TreeBuilder {
        let vectors: FloatMatrix
        let metric: Metric
        let leafSize: Int
        var rng: SeededGenerator

        mutating func build(rows n: Int) -> TreeParts {
            var parts = TreeParts()
            var order = (0..<n).map { Int32($0) }
            let d = vectors.columns
            var normal = [Float](repeating: 0, count: d)
            var side = [Bool](repeating: false, count: n)
            // Pending nodes: a range of `order`, and where to write the node's encoding (the
            // parent's child slot, or -1 for the root).
            var stack: [(start: Int, end: Int, slot: Int)] = [(0, n, -1)]
            while let (start, end, slot) = stack.popLast() {
                let size = end - start
                let encoded: Int32
                if size <= leafSize || size <= 1 {
                    parts.leafRows += order[start..<end]
                    parts.leafStarts.append(Int32(parts.leafRows.count))
                    encoded = -Int32(parts.leafStarts.count - 1)
                } else {
                    var offset: Float = 0, left = 0
                    order.withUnsafeMutableBufferPointer { order in
                        normal.withUnsafeMutableBufferPointer { normal in
                            side.withUnsafeMutableBufferPointer { side in
                                (offset, left) = split(order.baseAddress! + start, count: size, normal: normal.baseAddress!, side: side.baseAddress!)
                            }
                        }
                    }
                    let node = parts.offsets.count
                    parts.normals += normal
                    parts.offsets.append(offset)
                    parts.children += [0, 0]
                    encoded = Int32(node)
                    // Children: rows on the negative side first (`start ..< start + left`).
                    stack.append((start + left, end, 2 * node + 1))
                    stack.append((start, start + left, 2 * node))
                }
                if slot < 0 { parts.root = encoded } else { parts.children[slot] = encoded }
            }
            return parts
        }

        /// Splits `count` rows in place (negative side first), writing the hyperplane's normal;
        /// returns its offset and the rows on the negative side.
        mutating func split(_ rows: UnsafeMutablePointer<Int32>, count: Int, normal: UnsafeMutablePointer<Float>, side: UnsafeMutablePointer<Bool>) -> (Float, Int) {
            let d = vectors.columns
            var offset: Float = 0
            var positive = 0
            for _ in 0..<3 {
                offset = twoMeans(rows, count: count, normal: normal)
                positive = 0
                for index in 0..<count {
                    let margin = VectorKernels.dot(normal, vectors.row(Int(rows[index])), count: d) + offset
                    // Annoy's side on a zero margin is random; a fixed side keeps ties together.
                    side[index] = margin > 0
                    if side[index] { positive += 1 }
                }
                if max(positive, count - positive) <= count * 95 / 100 { break }
            }
            if max(positive, count - positive) > count * 95 / 100 || positive == 0 || positive == count {
                // Random halves under a zero hyperplane: a query's margin is 0, both equal.
                normal.update(repeating: 0, count: d)
                offset = 0
                positive = 0
                for index in 0..<count {
                    side[index] = rng.next() & 1 == 1
                    if side[index] { positive += 1 }
                }
                if positive == 0 || positive == count {
                    side[0] = !side[0]
                    positive += side[0] ? 1 : -1
                }
            }
            // Stable partition: negative side first.
            var negatives: [Int32] = [], positives: [Int32] = []
            negatives.reserveCapacity(count - positive)
            positives.reserveCapacity(positive)
            for index in 0..<count { if side[index] { positives.append(rows[index]) } else { negatives.append(rows[index]) } }
            negatives.withUnsafeBufferPointer { rows.update(from: $0.baseAddress!, count: $0.count) }
            positives.withUnsafeBufferPointer { (rows + negatives.count).update(from: $0.baseAddress!, count: $0.count) }
            return (offset, negatives.count)
        }

        /// Annoy's two-means: centres `p` and `q` from two distinct random rows, then 200
        /// steps each moving the nearer centre to the running mean with one more random row.
        /// Writes the unit normal `p - q` and returns the offset (0 for angular data).
        mutating func twoMeans(_ rows: UnsafeMutablePointer<Int32>, count: Int, normal: UnsafeMutablePointer<Float>) -> Float {
            let d = vectors.columns
            let i = Int(rng.next() % UInt64(count))
            var j = Int(rng.next() % UInt64(count - 1))
            if j >= i { j += 1 }
            var p = Array(UnsafeBufferPointer(start: vectors.row(Int(rows[i])), count: d))
            var q = Array(UnsafeBufferPointer(start: vectors.row(Int(rows[j])), count: d))
            var pCount: Float = 1, qCount: Float = 1
            let angular = metric == .angular
            if angular {
                normalise(&p)
                normalise(&q)
            }
            for _ in 0..<200 {
                let k = Int(rng.next() % UInt64(count))
                let x = vectors.row(Int(rows[k]))
                let dp = pCount * distance(p, x, angular: angular), dq = qCount * distance(q, x, angular: angular)
                if dp < dq {
                    for c in 0..<d { p[c] = (p[c] * pCount + x[c]) / (pCount + 1) }
                    pCount += 1
                    if angular { normalise(&p) }
                } else if dq < dp {
                    for c in 0..<d { q[c] = (q[c] * qCount + x[c]) / (qCount + 1) }
                    qCount += 1
                    if angular { normalise(&q) }
                }
            }
            var norm: Float = 0
            for c in 0..<d {
                normal[c] = p[c] - q[c]
                norm += normal[c] * normal[c]
            }
            guard norm > 0 else {
                normal.update(repeating: 0, count: d)
                return 0
            }
            let scale = 1 / norm.squareRoot()
            for c in 0..<d { normal[c] *= scale }
            if angular { return 0 }
            var offset: Float = 0
            for c in 0..<d { offset -= normal[c] * (p[c] + q[c]) / 2 }
            return offset
        }

        func distance(_ centre: [Float], _ x: UnsafePointer<Float>, angular: Bool) -> Float {
            centre.withUnsafeBufferPointer { c in
                angular ? 2 - 2 * VectorKernels.dot(c.baseAddress!, x, count: c.count) : VectorKernels.squaredDistance(c.baseAddress!, x, count: c.count)
            }
        }

        func normalise(_ values: inout [Float]) {
            var norm: Float = 0
            for value in values { norm += value * value }
            guard norm > 0 else { return }
            let scale = 1 / norm.squareRoot()
            for c in values.indices { values[c] *= scale }
        }
    }

    /// The `k` nearest stored vectors of each query among the first `searchK` candidates its
    /// priority queue over the trees finds (`config.searchK`, default trees x k, as Annoy),
    /// scored exactly. `nprobe`, `refine` and `base` do not apply.
    public func search(_ queries: FloatMatrix, config: IVFPQSearchConfig, base: FloatMatrix? = nil) throws -> (NeighborTable, IVFPQIndex.SearchStats) {
        let started = ProgressDisplay.now()
        let prepared = try preparedQueries(queries, k: config.k)
        let searchK = config.searchK ?? trees * config.k
        guard searchK >= 1 else { throw SimjobError("search_k must be at least 1 (got \(searchK))") }
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let q = queries.rows, d = dimension, n = count
        let result = NeighborLists(rows: q, k: config.k)
        let blockSize = 64
        let blocks = (q + blockSize - 1) / blockSize
        let workers = min(threads, max(blocks, 1))
        var scanned = [Int](repeating: 0, count: workers)
        let stamps = UnsafeMutablePointer<Int32>.allocate(capacity: workers * n)
        stamps.initialize(repeating: -1, count: workers * n)
        defer { stamps.deallocate() }
        try scanned.withUnsafeMutableBufferPointer { scannedBuffer in
            try offsets.withUnsafeBufferPointer { offsetBuffer in
                try children.withUnsafeBufferPointer { childBuffer in
                    try leafStarts.withUnsafeBufferPointer { startBuffer in
                        try leafRows.withUnsafeBufferPointer { rowBuffer in
                            let shared = UnsafeSendable((scannedBuffer.baseAddress!, offsetBuffer.baseAddress!, childBuffer.baseAddress!,
                                                         startBuffer.baseAddress!, rowBuffer.baseAddress!))
                            try BlockedJoin.run(items: blocks, threads: workers, block: 1) { block, worker in
                                let (scanned, offsets, children, leafStarts, leafRows) = shared.value
                                let first = block * blockSize, rows = min(blockSize, q - first)
                                let seen = stamps + worker.index * n
                                var heap = NodeQueue()
                                var found: [Int32] = []
                                var scored = 0
                                for local in 0..<rows {
                                    let query = first + local
                                    let x = prepared.row(query)
                                    let tag = Int32(truncatingIfNeeded: query)
                                    found.removeAll(keepingCapacity: true)
                                    heap.removeAll()
                                    for root in roots { heap.push(.infinity, root) }
                                    var candidates = 0
                                    while candidates < searchK, let (priority, node) = heap.pop() {
                                        if node < 0 {
                                            let leaf = Int(-node - 1)
                                            let from = Int(leafStarts[leaf]), to = Int(leafStarts[leaf + 1])
                                            candidates += to - from
                                            for slot in from..<to {
                                                let id = leafRows[slot]
                                                if seen[Int(id)] == tag { continue }
                                                seen[Int(id)] = tag
                                                found.append(id)
                                            }
                                        } else {
                                            let split = Int(node)
                                            let margin = VectorKernels.dot(normals.row(split), x, count: d) + offsets[split]
                                            heap.push(min(priority, margin), children[2 * split + 1])
                                            heap.push(min(priority, -margin), children[2 * split])
                                        }
                                    }
                                    scored += found.count
                                    found.withUnsafeBufferPointer { score(x, candidates: $0.baseAddress!, count: $0.count, into: result, row: query) }
                                }
                                scanned[worker.index] += scored
                            }
                        }
                    }
                }
            }
        }
        try Cancellation.check()
        var stats = IVFPQIndex.SearchStats()
        stats.queries = q
        stats.codesScanned = scanned.reduce(0, +)
        let table = NeighborTable(converting: result, metric: metric)
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }

    /// Scores candidates exactly, the row two ahead prefetched (as `LSHIndex.score`).
    @inline(__always)
    func score(_ x: UnsafePointer<Float>, candidates: UnsafePointer<Int32>, count: Int, into result: NeighborLists, row: Int) {
        let d = dimension
        for index in 0..<count {
            if index + 2 < count { VectorKernels.prefetch(vectors.row(Int(candidates[index + 2])), bytes: d * 4) }
            let id = candidates[index]
            result.insert(row: row, score: metric.preparedScore(x, vectors.row(Int(id)), dimension: d), id: id)
        }
    }
}

/// A binary max-heap of (priority, node) for the forest's search.
struct NodeQueue {
    var priorities: [Float] = []
    var nodes: [Int32] = []

    mutating func removeAll() {
        priorities.removeAll(keepingCapacity: true)
        nodes.removeAll(keepingCapacity: true)
    }

    mutating func push(_ priority: Float, _ node: Int32) {
        priorities.append(priority)
        nodes.append(node)
        var child = priorities.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard priorities[child] > priorities[parent] else { break }
            priorities.swapAt(child, parent)
            nodes.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (Float, Int32)? {
        guard let top = priorities.first else { return nil }
        let node = nodes[0]
        let lastPriority = priorities.removeLast(), lastNode = nodes.removeLast()
        if !priorities.isEmpty {
            priorities[0] = lastPriority
            nodes[0] = lastNode
            var parent = 0
            let size = priorities.count
            while true {
                let left = 2 * parent + 1, right = left + 1
                var largest = parent
                if left < size && priorities[left] > priorities[largest] { largest = left }
                if right < size && priorities[right] > priorities[largest] { largest = right }
                if largest == parent { break }
                priorities.swapAt(parent, largest)
                nodes.swapAt(parent, largest)
                parent = largest
            }
        }
        return (top, node)
    }
}
