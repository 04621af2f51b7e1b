import Dispatch
import Foundation
import Logging
import SimjobKernels

/// Settings of an HNSW index built from a k-NN graph (`simjob train --type hnsw`).
public struct HNSWConfig: Codable, Sendable, Equatable {
    /// Links per node on the upper layers; the base layer keeps up to 2 m, as hnswlib. Default 16.
    public var m: Int = 16
    /// Seed of the level draw. Default 100, as hnswlib's default random seed.
    public var seed: UInt64 = 100
    /// Worker threads; nil uses every core.
    public var threads: Int? = nil

    public init(m: Int = 16) { self.m = m }
}

/// A hierarchical navigable small-world graph (Malkov and Yashunin, IEEE TPAMI 2020), built
/// from a k-NN graph rather than by insertion:
///
/// - every node draws its top level as hnswlib does, `floor(-ln(u) / ln(m))`;
/// - the base layer's links of a node are chosen from its k nearest neighbours (the given
///   graph; else an approximate m-NN graph, or an exact 2m-NN one for small sets) and the nodes
///   that list it (the reverse edges) by HNSW's neighbour-selection heuristic (a candidate is
///   kept unless an already kept link is closer to it than the node is), up to 2 m;
/// - layer l >= 1 holds the nodes of level >= l; their links are the heuristic's choice from
///   their exact nearest neighbours among those nodes, up to m;
/// - the entry point is the first node of the highest level.
///
/// Search is hnswlib's: greedy descent through the upper layers, then a best-first beam of
/// width `ef` on the base layer. The vectors are stored (unit length for angular), so
/// distances are exact.
public final class HNSWIndex: SearchableIndex, @unchecked Sendable {
    public let metric: Metric
    public let dimension: Int
    public let m: Int
    /// `count x d` (unit length for angular).
    public let vectors: FloatMatrix
    /// Every node's top level.
    public let levels: [Int32]
    /// Base layer: `count x 2m` neighbour ids, -1 after the last.
    public let base: [Int32]
    /// Layer l (l = 1...maxLevel) at `upper[l - 1]`: its nodes, and `nodes x m` links (-1 padded).
    public let upper: [(nodes: [Int32], links: [Int32])]
    public let entryPoint: Int
    public let source: String
    /// Position of a node in each upper layer's node list (-1 when absent).
    public let positions: [[Int32]]

    public var count: Int { vectors.rows }
    public var nlist: Int { 0 }
    public var maxLevel: Int { upper.count }
    public var baseWidth: Int { 2 * m }
    public var sizeInBytes: Int { vectors.byteCount + base.count * 4 + upper.reduce(0) { $0 + $1.nodes.count * 4 + $1.links.count * 4 } + levels.count * 4 }
    public var summary: String { "HNSW m=\(m)" }
    public var algorithm: String { "simjob-hnsw" }
    public func settingName(refine: Int) -> String { "HNSW(m=\(m))" }

    public init(metric: Metric, m: Int, vectors: FloatMatrix, levels: [Int32], base: [Int32], upper: [(nodes: [Int32], links: [Int32])],
                entryPoint: Int, source: String) {
        self.metric = metric
        self.dimension = vectors.columns
        self.m = m
        self.vectors = vectors
        self.levels = levels
        self.base = base
        self.upper = upper
        self.entryPoint = entryPoint
        self.source = source
        positions = upper.map { layer in
            var position = [Int32](repeating: -1, count: vectors.rows)
            for (index, node) in layer.nodes.enumerated() { position[Int(node)] = Int32(index) }
            return position
        }
    }

    /// The score search and construction compare: squared L2 (euclidean), half of it on unit
    /// vectors (angular: 1 - cos), or -dot (ip).
    @inline(__always)
    func score(_ q: UnsafePointer<Float>, _ node: Int) -> Float {
        metric.preparedScore(q, vectors.row(node), dimension: dimension)
    }

    /// hnswlib's level of a node: `floor(-ln(u) * mult)`, mult = 1 / ln(m).
    static func drawLevels(_ n: Int, m: Int, seed: UInt64) -> [Int32] {
        var rng = SeededGenerator(seed: seed, stream: 0x4E5)
        let mult = 1 / log(Double(max(m, 2)))
        return (0..<n).map { _ in
            let u = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-300)
            return Int32(min(Int(-log(u) * mult), 30))
        }
    }

    /// HNSW's neighbour selection: `candidates` (node, score to the owner) in ascending order;
    /// a candidate is kept unless a kept one is closer to it than the owner is. At most `limit`.
    static func select(_ candidates: [(Int32, Float)], limit: Int, vectors: FloatMatrix, metric: Metric, into out: UnsafeMutablePointer<Int32>) {
        var kept: [Int32] = []
        kept.reserveCapacity(limit)
        let d = vectors.columns
        for (node, toOwner) in candidates {
            if kept.count == limit { break }
            var good = true
            for other in kept {
                let between = metric.preparedScore(vectors.row(Int(node)), vectors.row(Int(other)), dimension: d)
                if between < toOwner { good = false; break }
            }
            if good { kept.append(node) }
        }
        for slot in 0..<limit { out[slot] = slot < kept.count ? kept[slot] : -1 }
    }

    /// Links of `rows` nodes (numbered locally) from their k-NN lists (local ids, nearest first)
    /// and the reverse edges, by the heuristic, `limit` per node.
    static func layerLinks(knn: [Int32], k: Int, rows: Int, limit: Int, vectors: FloatMatrix, metric: Metric, threads: Int,
                           extra: [[Int32]] = []) -> [Int32] {
        var reverse = extra.isEmpty ? [[Int32]](repeating: [], count: rows) : extra
        for row in 0..<rows {
            for slot in 0..<k {
                let neighbor = knn[row * k + slot]
                if neighbor >= 0 { reverse[Int(neighbor)].append(Int32(row)) }
            }
        }
        let reverseLists = reverse
        var links = [Int32](repeating: -1, count: rows * limit)
        let d = vectors.columns
        links.withUnsafeMutableBufferPointer { buffer in
            let out = UnsafeSendable(buffer.baseAddress!)
            let pieces = max(1, min(rows, threads * 8))
            DispatchQueue.concurrentPerform(iterations: pieces) { piece in
                for row in (rows * piece / pieces)..<(rows * (piece + 1) / pieces) {
                    var seen = Set<Int32>()
                    var candidates: [(Int32, Float)] = []
                    for neighbor in knn[(row * k)..<((row + 1) * k)] + reverseLists[row] where neighbor >= 0 && Int(neighbor) != row {
                        guard seen.insert(neighbor).inserted else { continue }
                        candidates.append((neighbor, metric.preparedScore(vectors.row(row), vectors.row(Int(neighbor)), dimension: d)))
                    }
                    candidates.sort { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
                    select(candidates, limit: limit, vectors: vectors, metric: metric, into: out.value + row * limit)
                }
            }
        }
        // As insertion does in hnswlib, every chosen link is made both ways: a node keeps the
        // links it chose and gains those that chose it, pruned by the heuristic only when they
        // are more than `limit`.
        var incoming = [[Int32]](repeating: [], count: rows)
        for row in 0..<rows {
            for slot in 0..<limit {
                let neighbor = links[row * limit + slot]
                if neighbor < 0 { break }
                incoming[Int(neighbor)].append(Int32(row))
            }
        }
        let chosen = links, incomingLists = incoming
        links.withUnsafeMutableBufferPointer { buffer in
            let out = UnsafeSendable(buffer.baseAddress!)
            let pieces = max(1, min(rows, threads * 8))
            DispatchQueue.concurrentPerform(iterations: pieces) { piece in
                for row in (rows * piece / pieces)..<(rows * (piece + 1) / pieces) {
                    var merged = chosen[(row * limit)..<((row + 1) * limit)].filter { $0 >= 0 }
                    var seen = Set(merged)
                    for node in incomingLists[row] where seen.insert(node).inserted { merged.append(node) }
                    if merged.count <= limit {
                        for slot in 0..<limit { out.value[row * limit + slot] = slot < merged.count ? merged[slot] : -1 }
                        continue
                    }
                    var candidates = merged.map { node in (node, metric.preparedScore(vectors.row(row), vectors.row(Int(node)), dimension: d)) }
                    candidates.sort { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
                    select(candidates, limit: limit, vectors: vectors, metric: metric, into: out.value + row * limit)
                }
            }
        }
        return links
    }

    /// Builds the index over `vectors` (prepared for the metric: unit rows for angular) from a
    /// k-NN graph of them (`graph`: n x k ids, nearest first), or from an exact graph of 2 m
    /// neighbours computed here when `graph` is nil.
    public static func build(
        _ vectors: FloatMatrix, metric: Metric, graph: (ids: [Int32], k: Int)?, config: HNSWConfig, source: String, logger: Logger? = nil
    ) throws -> (HNSWIndex, Double) {
        let started = ProgressDisplay.now()
        let n = vectors.rows
        guard config.m >= 2 else { throw SimjobError("m = \(config.m) must be at least 2") }
        guard n >= 2 else { throw SimjobError("an HNSW index needs at least 2 vectors") }
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        func exactGraph(_ rows: FloatMatrix, k: Int) throws -> [Int32] {
            // auto: int8 or bf16 products where they are faster here, with the same neighbours.
            let exact = ExactKNNConfig(k: k, metric: metric, threads: threads)
            var engine = ExactKNN(config: exact)
            engine.progressStyle = .silent
            return try engine.graph(rows, metric: metric).0.idArray
        }
        let knn: (ids: [Int32], k: Int)
        if let graph {
            guard graph.ids.count == n * graph.k else { throw SimjobError("the k-NN graph has \(graph.ids.count / max(graph.k, 1)) rows, the set \(n)") }
            knn = graph
        } else if n <= 4 * config.m * 64 {
            let k = min(2 * config.m, n - 1)
            logger?.info("hnsw: exact \(k)-NN graph of \(n) rows for the base layer")
            knn = (try exactGraph(vectors, k: k), k)
        } else {
            // simjob's approximate graph of m neighbours (its default settings): measured on
            // Fashion-MNIST, the index it gives matches hnswlib's recall-vs-QPS curve in 0.44x
            // hnswlib's build time, where an exact 2m-NN graph costs 0.68x (see the README).
            logger?.info("hnsw: approximate \(config.m)-NN graph of \(n) rows for the base layer")
            var approx = ApproxKNNConfig(k: config.m)
            approx.threads = threads
            var engine = ApproxKNNGraph(config: approx)
            engine.progressStyle = .silent
            knn = (try engine.graph(vectors, metric: metric).0.idArray, config.m)
        }
        let graphSeconds = ProgressDisplay.now() - started
        try Cancellation.check()
        let levels = drawLevels(n, m: config.m, seed: config.seed)
        let top = Int(levels.max() ?? 0)
        var upper: [(nodes: [Int32], links: [Int32])] = []
        for level in stride(from: 1, through: top, by: 1) {
            try Cancellation.check()
            let nodes = (0..<n).filter { levels[$0] >= level }.map(Int32.init)
            let layer = FloatMatrix(rows: nodes.count, columns: vectors.columns)
            for (row, node) in nodes.enumerated() { layer.row(row).update(from: vectors.row(Int(node)), count: vectors.columns) }
            var links = [Int32](repeating: -1, count: nodes.count * config.m)
            if nodes.count >= 2 {
                let k = min(2 * config.m, nodes.count - 1)
                let local = layerLinks(knn: try exactGraph(layer, k: k), k: k, rows: nodes.count, limit: config.m, vectors: layer, metric: metric, threads: threads)
                links = local.map { $0 >= 0 ? nodes[Int($0)] : -1 }
            }
            upper.append((nodes, links))
        }
        let upperSeconds = ProgressDisplay.now() - started - graphSeconds
        // The base layer: a k-NN graph alone stays inside clusters, so a node of level >= 1 also
        // offers the heuristic its layer-1 links (long range, as hnswlib's early insertions
        // have), and these become two-way like every chosen link.
        var extra = [[Int32]](repeating: [], count: n)
        if let layer = upper.first {
            for (row, node) in layer.nodes.enumerated() {
                for slot in 0..<config.m {
                    let other = layer.links[row * config.m + slot]
                    if other < 0 { break }
                    extra[Int(node)].append(other)
                }
            }
        }
        try Cancellation.check()
        let base = layerLinks(knn: knn.ids, k: knn.k, rows: n, limit: 2 * config.m, vectors: vectors, metric: metric, threads: threads, extra: extra)
        let entry = top == 0 ? 0 : Int(upper[top - 1].nodes[0])
        let index = HNSWIndex(metric: metric, m: config.m, vectors: vectors, levels: levels, base: base, upper: upper, entryPoint: entry, source: source)
        let total = ProgressDisplay.now() - started
        logger?.info("hnsw: \(n) nodes, \(top + 1) layers, built in \(String(format: "%.2f s (k-NN graph %.2f s, upper layers %.2f s, base layer %.2f s)", total, graphSeconds, upperSeconds, total - graphSeconds - upperSeconds))")
        return (index, ProgressDisplay.now() - started)
    }

    /// One query: greedy descent, then the base layer's beam of width `ef`; pushes the best
    /// `k` into `result`. Returns the distance evaluations.
    func searchOne(_ q: UnsafePointer<Float>, k: Int, ef: Int, visited: UnsafeMutablePointer<UInt32>, stamp: UInt32, into result: NeighborLists, row: Int) -> Int {
        var current = entryPoint
        var currentScore = score(q, current)
        var evaluations = 1
        for level in stride(from: maxLevel, through: 1, by: -1) {
            let layer = upper[level - 1], position = positions[level - 1]
            var changed = true
            while changed {
                changed = false
                let at = Int(position[current])
                for slot in 0..<m {
                    let neighbor = Int(layer.links[at * m + slot])
                    if neighbor < 0 { break }
                    let s = score(q, neighbor)
                    evaluations += 1
                    if s < currentScore { currentScore = s; current = neighbor; changed = true }
                }
            }
        }
        // Base layer: candidates (min-heap by score) and the best ef (max-heap).
        let width = max(ef, k)
        var candidates = MinHeap()
        var best = MaxHeap()
        visited[current] = stamp
        candidates.push(currentScore, Int32(current))
        best.push(currentScore, Int32(current))
        var bound = currentScore
        let links = 2 * m
        while let (s, node) = candidates.pop() {
            if s > bound && best.count == width { break }
            let offset = Int(node) * links
            for slot in 0..<links {
                let neighbor = Int(base[offset + slot])
                if neighbor < 0 { break }
                if visited[neighbor] == stamp { continue }
                visited[neighbor] = stamp
                let t = score(q, neighbor)
                evaluations += 1
                if best.count < width || t < bound {
                    candidates.push(t, Int32(neighbor))
                    best.push(t, Int32(neighbor))
                    if best.count > width { _ = best.pop() }
                    bound = best.top!.0
                }
            }
        }
        for (s, id) in best.items { result.insert(row: row, score: s, id: id) }
        return evaluations
    }

    /// The `k` nearest nodes of each query at beam width `config.ef` (default max(k, 10), as
    /// hnswlib); nprobe and refine do not apply.
    public func search(_ queries: FloatMatrix, config: IVFPQSearchConfig, base baseVectors: FloatMatrix? = nil) throws -> (NeighborTable, IVFPQIndex.SearchStats) {
        let started = ProgressDisplay.now()
        let prepared = try preparedQueries(queries, k: config.k)
        let ef = config.ef ?? max(config.k, 10)
        guard ef >= 1 else { throw SimjobError("ef must be at least 1 (got \(ef))") }
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let result = NeighborLists(rows: queries.rows, k: config.k)
        let blockSize = 64
        let blocks = (queries.rows + blockSize - 1) / blockSize
        let workers = min(threads, max(blocks, 1))
        var evaluations = [Int](repeating: 0, count: workers)
        // One visited list per worker, cleared once: a query marks the nodes it scores with its
        // own stamp (its row + 1), which no other query of that worker uses.
        let visitedLists = UnsafeMutablePointer<UInt32>.allocate(capacity: workers * count)
        visitedLists.initialize(repeating: 0, count: workers * count)
        defer { visitedLists.deallocate() }
        let lists = UnsafeSendable(visitedLists)
        try evaluations.withUnsafeMutableBufferPointer { buffer in
            let shared = UnsafeSendable(buffer.baseAddress!)
            try BlockedJoin.run(items: blocks, threads: workers) { block, worker in
                let visited = lists.value + worker.index * count
                var total = 0
                for query in (block * blockSize)..<min((block + 1) * blockSize, queries.rows) {
                    total += searchOne(prepared.row(query), k: config.k, ef: ef, visited: visited, stamp: UInt32(query + 1), into: result, row: query)
                }
                shared.value[worker.index] += total
            }
        }
        try Cancellation.check()
        var stats = IVFPQIndex.SearchStats()
        stats.queries = queries.rows
        stats.codesScanned = evaluations.reduce(0, +)
        let table = NeighborTable(converting: result, metric: metric)
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }
}

/// A binary min-heap of (score, id), ties by id.
struct MinHeap {
    var items: [(Float, Int32)] = []
    var count: Int { items.count }
    @inline(__always) static func less(_ a: (Float, Int32), _ b: (Float, Int32)) -> Bool { a.0 < b.0 || (a.0 == b.0 && a.1 < b.1) }
    mutating func push(_ score: Float, _ id: Int32) {
        items.append((score, id))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !Self.less(items[child], items[parent]) { break }
            items.swapAt(child, parent)
            child = parent
        }
    }
    mutating func pop() -> (Float, Int32)? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count && Self.less(items[left], items[smallest]) { smallest = left }
                if right < items.count && Self.less(items[right], items[smallest]) { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}

/// A binary max-heap of (score, id), ties by id (the larger id is "worse").
struct MaxHeap {
    var inner = MinHeap()
    var count: Int { inner.count }
    var items: [(Float, Int32)] { inner.items.map { (-$0.0, -$0.1) } }
    var top: (Float, Int32)? { inner.items.first.map { (-$0.0, -$0.1) } }
    mutating func push(_ score: Float, _ id: Int32) { inner.push(-score, -id) }
    mutating func pop() -> (Float, Int32)? { inner.pop().map { (-$0.0, -$0.1) } }
}
