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
/// one side is tried again (3 attempts in all), and one that still sends more than 99 % is
/// replaced by random halves under a zero hyperplane (Annoy's thresholds). Trees are built
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
        _ source: RowSource, metric: Metric, config: IVFPQConfig, logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .silent,
        sharedNodeBytes: Int = 2 << 20
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
        let progress = ProgressDisplay("rptrees", total: trees, unit: "trees", style: progressStyle, logger: logger)
        // Trees in groups that share the top levels' passes over the rows.
        var group = 0
        while group < trees {
            let members = min(groupSize, trees - group)
            var builders = (0..<members).map { member in
                TreeBuilder(vectors: vectors, metric: metric, leafSize: leafSize, rng: SeededGenerator(seed: config.seed, stream: 0x7EE0 &+ UInt64(group + member)))
            }
            try buildGroup(&builders, parts: parts + group, threads: threads, sharedNodeBytes: sharedNodeBytes)
            progress.advance(by: members)
            try Cancellation.check()
            group += members
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

    /// Trees built together in their top levels.
    static let groupSize = 16

    /// Builds a group of trees. The top levels, whose nodes hold more rows than a cache keeps,
    /// go level by level for all the group's trees at once: one pass over the rows (in row
    /// order, in parallel) computes every tree's side for every row, so a row is read once per
    /// level for the group instead of once per tree (building was memory-bound: 10 trees over
    /// Fashion-MNIST read 13 GB). Below, each tree goes on depth first, its nodes' rows in cache.
    static func buildGroup(_ builders: inout [TreeBuilder], parts: UnsafeMutablePointer<TreeParts>, threads: Int, sharedNodeBytes: Int) throws {
        let members = builders.count
        let vectors = builders[0].vectors, n = vectors.rows, d = vectors.columns
        // Nodes of at most `sharedNodeBytes` of rows (default 2 MiB) are left to the depth-first part.
        let cacheRows = sharedNodeBytes / max(d * 4, 1)
        // Per member: the level's node of every row (-1: none), and its side.
        let nodeOf = UnsafeMutablePointer<Int32>.allocate(capacity: members * n)
        nodeOf.initialize(repeating: -1, count: members * n)
        let sides = UnsafeMutablePointer<Bool>.allocate(capacity: members * n)
        sides.initialize(repeating: false, count: members * n)
        defer { nodeOf.deallocate(); sides.deallocate() }
        try builders.withUnsafeMutableBufferPointer { buffer in
            let state = UnsafeSendable((buffer.baseAddress!, nodeOf, sides))
            for member in 0..<members { buffer[member].start(rows: n) }
            while true {
                // Each member's hyperplanes for its large nodes, their rows marked.
                try BlockedJoin.run(items: members, threads: threads, block: 1) { member, _ in
                    let (builders, nodeOf, _) = state.value
                    builders[member].planLevel(cacheRows: cacheRows)
                    builders[member].markLevel(nodeOf: nodeOf + member * n)
                }
                guard buffer.contains(where: { !$0.level.isEmpty }) else { break }
                // One pass over the rows, in row order: every member's side of every marked row.
                let block = 1024
                try BlockedJoin.run(items: (n + block - 1) / block, threads: threads, block: 1) { item, _ in
                    let (builders, nodeOf, sides) = state.value
                    for row in (item * block)..<min(n, item * block + block) {
                        let x = vectors.row(row)
                        for member in 0..<members {
                            let node = nodeOf[member * n + row]
                            guard node >= 0 else { continue }
                            let plane = builders[member].level[Int(node)]
                            sides[member * n + row] = VectorKernels.dot(plane.normal, x, count: d) + plane.offset > 0
                        }
                    }
                }
                try BlockedJoin.run(items: members, threads: threads, block: 1) { member, _ in
                    let (builders, nodeOf, sides) = state.value
                    builders[member].finishLevel(nodeOf: nodeOf + member * n, sides: sides + member * n)
                }
                try Cancellation.check()
            }
            // The rest of every tree, depth first.
            let output = UnsafeSendable(parts)
            try BlockedJoin.run(items: members, threads: threads, block: 1) { member, _ in
                output.value[member] = state.value.0[member].finish()
            }
        }
    }

    /// Builds one tree: its top levels as planned by `buildGroup` (`start`, then `planLevel`
    /// and `finishLevel` per level), the rest depth first (`finish`; an explicit stack, since
    /// degenerate data can make deep trees).
    struct TreeBuilder {
        let vectors: FloatMatrix
        let metric: Metric
        let leafSize: Int
        var rng: SeededGenerator

        /// A node whose rows are `order[start ..< end]`, to be written at `slot` (the parent's
        /// child slot, or -1 for the root).
        typealias Pending = (start: Int, end: Int, slot: Int)
        /// A planned node's hyperplane (`normal` points into `normals`).
        struct Plane {
            var pending: Pending
            var normal: UnsafeMutablePointer<Float>
            var offset: Float
        }
        var parts = TreeParts()
        /// The rows, grouped by node (allocated by `start`, freed by `finish`).
        var order: UnsafeMutablePointer<Int32> = .allocate(capacity: 1)
        var rows = 0
        var frontier: [Pending] = []
        var level: [Plane] = []
        var normals: UnsafeMutablePointer<Float>? = nil
        var normalCapacity = 0

        mutating func start(rows n: Int) {
            order.deallocate()
            order = .allocate(capacity: max(n, 1))
            for row in 0..<n { order[row] = Int32(row) }
            rows = n
            frontier = [(0, n, -1)]
        }

        /// Writes `pending` as a leaf and returns its encoding.
        mutating func leaf(_ pending: Pending) -> Int32 {
            parts.leafRows += UnsafeBufferPointer(start: order + pending.start, count: pending.end - pending.start)
            parts.leafStarts.append(Int32(parts.leafRows.count))
            return -Int32(parts.leafStarts.count - 1)
        }

        mutating func link(_ slot: Int, _ encoded: Int32) {
            if slot < 0 { parts.root = encoded } else { parts.children[slot] = encoded }
        }

        /// Appends a split node (its children to be linked) and returns its number.
        mutating func addSplit(normal: [Float], offset: Float) -> Int {
            let node = parts.offsets.count
            parts.normals += normal
            parts.offsets.append(offset)
            parts.children += [0, 0]
            return node
        }

        /// Reorders `count` rows stably, those for which `positive(index)` is false first;
        /// returns how many those are. `positive` sees the rows in their original order.
        static func partition(_ rows: UnsafeMutablePointer<Int32>, count: Int, positive: (Int) -> Bool) -> Int {
            var negatives: [Int32] = [], positives: [Int32] = []
            negatives.reserveCapacity(count)
            positives.reserveCapacity(count)
            for index in 0..<count { if positive(index) { positives.append(rows[index]) } else { negatives.append(rows[index]) } }
            rows.update(from: negatives, count: negatives.count)
            (rows + negatives.count).update(from: positives, count: positives.count)
            return negatives.count
        }

        /// Plans the frontier's nodes larger than `cacheRows` (hyperplanes by two-means) and
        /// leaves the others in the frontier for `finish`.
        mutating func planLevel(cacheRows: Int) {
            level.removeAll()
            let large = frontier.filter { $0.end - $0.start > max(cacheRows, leafSize) }
            guard !large.isEmpty else { return }
            frontier = frontier.filter { $0.end - $0.start <= max(cacheRows, leafSize) }
            let d = vectors.columns
            if normalCapacity < large.count {
                normals?.deallocate()
                normals = .allocate(capacity: large.count * d)
                normalCapacity = large.count
            }
            for (index, pending) in large.enumerated() {
                let normal = normals! + index * d
                let offset = twoMeans(order + pending.start, count: pending.end - pending.start, normal: normal)
                level.append(Plane(pending: pending, normal: normal, offset: offset))
            }
        }

        /// Partitions the planned nodes by the sides computed for them and marks the rows of
        /// the children that are large again with their index in the next level (others -1).
        mutating func finishLevel(nodeOf: UnsafeMutablePointer<Int32>, sides: UnsafeMutablePointer<Bool>) {
            let d = vectors.columns
            var scratch = [Bool](repeating: false, count: 0)
            for plane in level {
                let (start, end, slot) = plane.pending
                let count = end - start
                var positive = 0
                for position in start..<end where sides[Int(order[position])] { positive += 1 }
                var normal = Array(UnsafeBufferPointer(start: plane.normal, count: d))
                var offset = plane.offset, left = count - positive
                if max(positive, count - positive) > count * 95 / 100 {
                    // Too uneven: the retries and the random fallback of the depth-first split.
                    if scratch.count < count { scratch = [Bool](repeating: false, count: count) }
                    normal.withUnsafeMutableBufferPointer { normalBuffer in
                        scratch.withUnsafeMutableBufferPointer { side in
                            (offset, left) = split(order + start, count: count, normal: normalBuffer.baseAddress!, side: side.baseAddress!)
                        }
                    }
                } else {
                    let rows = order + start
                    left = Self.partition(rows, count: count) { sides[Int(rows[$0])] }
                }
                let node = addSplit(normal: normal, offset: offset)
                link(slot, Int32(node))
                frontier.append((start, start + left, 2 * node))
                frontier.append((start + left, end, 2 * node + 1))
            }
            // This level's rows are unmarked; `markLevel` marks the next level's.
            for plane in level {
                for position in plane.pending.start..<plane.pending.end { nodeOf[Int(order[position])] = -1 }
            }
            level.removeAll()
        }

        /// Marks the rows of the frontier's large nodes with their index in the coming level.
        func markLevel(nodeOf: UnsafeMutablePointer<Int32>) {
            for (index, plane) in level.enumerated() {
                for position in plane.pending.start..<plane.pending.end { nodeOf[Int(order[position])] = Int32(index) }
            }
        }

        /// The frontier's nodes depth first; returns the tree.
        mutating func finish() -> TreeParts {
            normals?.deallocate()
            normals = nil
            let n = rows
            defer {
                order.deallocate()
                order = .allocate(capacity: 1)
            }
            let d = vectors.columns
            var normal = [Float](repeating: 0, count: d)
            var side = [Bool](repeating: false, count: n)
            var stack = Array(frontier.reversed())
            frontier.removeAll()
            while let (start, end, slot) = stack.popLast() {
                let size = end - start
                let encoded: Int32
                if size <= leafSize || size <= 1 {
                    encoded = leaf((start, end, slot))
                } else {
                    var offset: Float = 0, left = 0
                    normal.withUnsafeMutableBufferPointer { normal in
                        side.withUnsafeMutableBufferPointer { side in
                            (offset, left) = split(order + start, count: size, normal: normal.baseAddress!, side: side.baseAddress!)
                        }
                    }
                    let node = addSplit(normal: normal, offset: offset)
                    encoded = Int32(node)
                    // Children: rows on the negative side first (`start ..< start + left`).
                    stack.append((start + left, end, 2 * node + 1))
                    stack.append((start, start + left, 2 * node))
                }
                link(slot, encoded)
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
            if max(positive, count - positive) > count * 99 / 100 || positive == 0 || positive == count {
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
            return (offset, Self.partition(rows, count: count) { side[$0] })
        }

        /// Annoy's two-means: centres `p` and `q` from two distinct random rows, then 200
        /// steps each moving the nearer centre to the running mean with one more random row.
        /// Writes the unit normal `p - q` and returns the offset (0 for angular data). For
        /// angular data the means are of unit rows and are not renormalised (the distance,
        /// 2 - 2 cos, ignores their length, but the normal does not), as in Annoy: with
        /// renormalised centres the hyperplane is the angle bisector instead, and recall on
        /// MiniLM came out 0.011-0.015 below Annoy's at search_k 100 with 50 trees.
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
                } else if dq < dp {
                    for c in 0..<d { q[c] = (q[c] * qCount + x[c]) / (qCount + 1) }
                    qCount += 1
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
                angular ? 2 - 2 * VectorKernels.dot(c.baseAddress!, x, count: c.count) / max(VectorKernels.dot(c.baseAddress!, c.baseAddress!, count: c.count).squareRoot(), .leastNormalMagnitude)
                    : VectorKernels.squaredDistance(c.baseAddress!, x, count: c.count)
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

    /// The candidates a search collects: `config.searchK`, else trees x k (Annoy's default).
    public func searchK(_ config: IVFPQSearchConfig) -> Int { config.searchK ?? trees * config.k }

    /// The `k` nearest stored vectors of each query among the first `searchK` candidates its
    /// priority queue over the trees finds (`config.searchK`, default trees x k, as Annoy),
    /// scored exactly. `nprobe`, `refine` and `base` do not apply.
    public func search(_ queries: FloatMatrix, config: IVFPQSearchConfig, base: FloatMatrix? = nil) throws -> (NeighborTable, IVFPQIndex.SearchStats) {
        let started = ProgressDisplay.now()
        let prepared = try preparedQueries(queries, k: config.k)
        let searchK = searchK(config)
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
                                    found.withUnsafeBufferPointer { vectors.scoreCandidates(x, $0.baseAddress!, count: $0.count, metric: metric, into: result, row: query) }
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
