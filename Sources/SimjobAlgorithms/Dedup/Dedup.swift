import Dispatch
import Foundation
import Logging
import SimjobBLAS
import SimjobKernels
import Synchronization

/// Near-duplicate detection: every pair within a distance threshold, grouped into connected
/// components (union-find), one representative kept per group.
///
/// Connected components chain: if A ~ B and B ~ C then A, B and C form one group even when A
/// and C are farther apart than the threshold. That is what "transitively the same item"
/// means, but a threshold far above the duplicates' scale can chain whole clusters together;
/// the summary's largest groups show when that happens.
public struct Dedup {
    public let config: DedupConfig
    public var logger: Logger?
    public var progressStyle: ProgressDisplay.Style = .silent

    public init(config: DedupConfig, logger: Logger? = nil) {
        self.config = config
        self.logger = logger
    }

    var threadCount: Int { max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount) }

    /// The largest score a pair within `threshold` can have, slightly inflated so that rounding
    /// in the score never drops a pair at exactly the threshold; the exact check is done on the
    /// reported distance.
    static func scoreBound(_ threshold: Double, metric: Metric) -> Float {
        let score: Double
        switch metric {
        case .euclidean: score = threshold * threshold
        case .angular, .ip: score = threshold
        }
        return Float(score + abs(score) * 1e-6 + 1e-12)
    }

    /// Bytes a run on `rows x dimension` holds besides the pairs: the vectors (in a spill file
    /// when the total is above the memory limit) and the rest (partition rankings, guest lists,
    /// group arrays; in fast mode the vectors laid out by partition are a second, spilled copy).
    public static func memoryPlan(rows n: Int, dimension d: Int, config: DedupConfig) -> (vectors: Int, state: Int) {
        let width = config.mode == .fast ? (config.nprobe > 0 ? config.nprobe + 1 : 32) : 0
        return (n * d * 4, n * (12 * width + 32))
    }

    /// Runs on `vectors` (rows of the set, already normalised for angular). With `spillingTo`
    /// (a set above the memory limit, `vectors` then in a spill file itself), fast mode lays the
    /// rows out by partition in a spill file in that directory and gathers each partition's
    /// rows from there; the pairs are the same.
    public func run(_ vectors: FloatMatrix, metric: Metric, spillingTo spillDirectory: String? = nil) throws -> DedupResult {
        let started = ProgressDisplay.now()
        let largest = try largestThreshold(metric: metric)
        let pairs: [(Int32, Int32, Float)]
        switch config.mode {
        case .exact:
            pairs = try exactJoin(vectors, metric: metric, threshold: largest, spilled: spillDirectory != nil)
        case .fast:
            let (found, partitions) = try fastJoin(vectors, metric: metric, threshold: largest, spillingTo: spillDirectory)
            var result = try fastMerge(vectors, metric: metric, pairs: found, partitions: partitions, started: started)
            result.spilledBytes = spillDirectory != nil ? vectors.byteCount : 0
            return result
        }
        var result = try groups(rows: vectors.rows, pairs: pairs, metric: metric, vectors: vectors, started: started)
        result.partitions = 1
        result.spilledBytes = spillDirectory != nil ? vectors.byteCount : 0
        return result
    }

    /// The groups of `pairs` (each i < j with its exact score, in any order, repeats allowed)
    /// at every threshold. The pairs are sorted and repeats dropped first, so the result does
    /// not depend on the order in which joins or shards found them. `vectors` (all rows) is
    /// read only by `keep: centroid`.
    public func groups(rows: Int, pairs found: [(Int32, Int32, Float)], metric: Metric, vectors: FloatMatrix?, started: Double = ProgressDisplay.now()) throws -> DedupResult {
        let thresholds = config.thresholds.sorted()
        var pairs = found
        pairs.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        var unique: [(Int32, Int32, Float)] = []
        unique.reserveCapacity(pairs.count)
        for pair in pairs where unique.last.map({ $0.0 != pair.0 || $0.1 != pair.1 }) ?? true { unique.append(pair) }
        pairs = unique
        if config.keep == .centroid && vectors == nil {
            throw SimjobError("dedup: keep centroid needs the vectors to pick each group's row")
        }
        let distances = pairs.map { metric.reportedDistance(fromScore: $0.2) }
        let groups = thresholds.map { threshold in
            Dedup.group(rows: rows, pairs: pairs, distances: distances, threshold: threshold, keep: config.keep, vectors: vectors)
        }
        return DedupResult(
            rows: rows, metric: metric, mode: config.mode, pairs: pairs.map { ($0.0, $0.1) },
            pairDistances: distances, byThreshold: groups.sorted { config.thresholds.firstIndex(of: $0.threshold)! < config.thresholds.firstIndex(of: $1.threshold)! },
            seconds: ProgressDisplay.now() - started, sampledPairRecall: nil, partitions: 1)
    }

    /// Checks the thresholds; returns the largest.
    func largestThreshold(metric: Metric) throws -> Double {
        let thresholds = config.thresholds.sorted()
        guard let largest = thresholds.last else { throw SimjobError("dedup: give at least one --threshold") }
        guard thresholds.allSatisfy({ $0.isFinite }) else { throw SimjobError("dedup: thresholds must be finite numbers") }
        if metric != .ip { guard thresholds.first! >= 0 else { throw SimjobError("dedup: thresholds must not be negative for \(metric)") } }
        return largest
    }

    /// One shard of the exact join: every pair (i, j), i < j, within the largest threshold
    /// whose first row i is in `home`. The home rows stay in memory; the rows after them are
    /// read by chunks that fit the memory limit beside them, so shards run one after another
    /// hold at most the limit whatever the set's size. The union of the shards' pairs over a
    /// cut of 0..<n into ranges of i is the whole join's, scores included (each is the exact
    /// score of its two vectors). Products in fp32.
    public func exactShardPairs(_ source: RowSource, home: Range<Int>, metric: Metric) throws -> [(Int32, Int32, Float)] {
        let largest = try largestThreshold(metric: metric)
        guard !home.isEmpty else { return [] }
        let n = source.rows, rowBytes = source.dimension * 4
        let rows = try ExactKNN.Chunk(source: source, range: home, metric: metric)
        let available = ProcessMemory.limit(config.memoryLimit) - home.count * rowBytes
        let chunkRows = max(ExactKNNConfig.defaultBlock, available / rowBytes)
        let sink = PairSink(limit: config.maxPairs)
        // The home rows against themselves, then against the rows after them, chunk by chunk.
        try joinChunks(rows, rows, metric: metric, threshold: largest, format: nil, sink: sink)
        for start in stride(from: home.upperBound, to: n, by: chunkRows) {
            let columns = try ExactKNN.Chunk(source: source, range: start..<min(start + chunkRows, n), metric: metric)
            try joinChunks(rows, columns, metric: metric, threshold: largest, format: nil, sink: sink)
        }
        return sink.pairs
    }

    /// The first rows of `count` cuts of `rows` so that each range holds about the same share
    /// of the upper triangle's pairs (row i pairs with the rows after it, so early ranges are
    /// shorter): cut c starts at n (1 - sqrt(1 - c / count)).
    public static func balancedCuts(rows n: Int, count: Int) -> [Range<Int>] {
        let starts = (0...count).map { c -> Int in
            c == count ? n : Int((Double(n) * (1 - (1 - Double(c) / Double(count)).squareRoot())).rounded())
        }
        return (0..<count).map { starts[$0]..<max(starts[$0], starts[$0 + 1]) }
    }

    // MARK: joins

    /// Collects pairs from worker threads; throws past `maxPairs`.
    final class PairSink: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var pairs: [(Int32, Int32, Float)] = []
        let limit: Int
        private(set) var overflow = false
        init(limit: Int) { self.limit = limit }
        func append(_ batch: [(Int32, Int32, Float)]) {
            lock.lock()
            defer { lock.unlock() }
            if pairs.count + batch.count > limit { overflow = true; return }
            pairs += batch
        }
    }

    /// Every pair i < j of the set within `threshold`: the upper triangle of `block x block`
    /// tiles, one sgemm each, scanned against the threshold.
    ///
    /// A reduced-precision product (`gemm`) needs a second copy of the rows, half their size
    /// again: it is used only when that copy fits within the memory limit beside the vectors and
    /// the state, never for spilled vectors.

    func exactJoin(_ vectors: FloatMatrix, metric: Metric, threshold: Double, spilled: Bool = false) throws -> [(Int32, Int32, Float)] {
        let n = vectors.rows
        let chunk = ExactKNN.Chunk(vectors: vectors, start: 0)
        // The product backend (`gemm`): pairs found are the same whichever it is.
        var format = try GEMMCalibration.resolve(config.gemm, dimension: vectors.columns, flops: Double(n) * Double(n) * Double(vectors.columns))
        if let chosen = format {
            let plan = Dedup.memoryPlan(rows: n, dimension: vectors.columns, config: config)
            let copy = n * ReducedRows.bytesPerRow(format: chosen, dimension: vectors.columns)
            if spilled || plan.vectors + plan.state + copy > ProcessMemory.limit(config.memoryLimit) {
                logger?.info("dedup: the \(chosen) copy of the rows (\(formatBytes(copy))) does not fit within the memory limit; products in fp32")
                format = nil
            }
        }
        chunk.prepare(format, threads: threadCount)
        let sink = PairSink(limit: config.maxPairs)
        try joinChunks(chunk, chunk, metric: metric, threshold: threshold, format: format, sink: sink)
        return sink.pairs
    }

    /// Every pair i < j within `threshold` with i a row of `rows` and j a row of `columns`
    /// (chunks of one set, ids global), by `block x block` tiles, one product each; tiles
    /// entirely on or below the diagonal are skipped.
    func joinChunks(_ rows: ExactKNN.Chunk, _ columns: ExactKNN.Chunk, metric: Metric, threshold: Double, format: ReducedGEMM.Format?, sink: PairSink) throws {
        let block = ExactKNNConfig.defaultBlock
        let tiles: [(Int, Int)] = stride(from: 0, to: rows.count, by: block).flatMap { row in
            stride(from: 0, to: columns.count, by: block).compactMap { column in
                // Some column of the tile must lie after some row of it.
                columns.start + min(column + block, columns.count) - 1 > rows.start + row ? (row, column) : nil
            }
        }
        let maxScore = Dedup.scoreBound(threshold, metric: metric)
        let progress = ProgressDisplay("dedup join", total: tiles.count, unit: "tiles", style: progressStyle, logger: logger)
        try BlockedJoin.run(items: tiles.count, threads: threadCount, block: block, progress: progress, stop: { sink.overflow }, format: format) { index, worker in
            let (row, column) = tiles[index]
            let tile = worker.tile(rows, row..<min(row + block, rows.count), against: columns, column..<min(column + block, columns.count))
            var found: [(Int32, Int32, Float)] = []
            RangeScan.scan(tile, metric: metric, maxScore: maxScore, upperTriangle: true) { i, j, score in
                if Double(metric.reportedDistance(fromScore: score)) <= threshold { found.append((Int32(i), Int32(j), score)) }
            }
            if !found.isEmpty { sink.append(found) }
        }
        progress.finish()
        try Cancellation.check()
        if sink.overflow { throw tooManyPairs(threshold) }
    }

    func tooManyPairs(_ threshold: Double) -> SimjobError {
        SimjobError("dedup: more than \(config.maxPairs) pairs within \(threshold): the threshold is far above the duplicates' scale (lower it, or raise max_pairs)")
    }

    /// The partitioned join.
    ///
    /// Rows are assigned to the nearest of `partitions` k-means centroids (their home). For a
    /// pair x, y within distance T with homes a != b, the triangle inequality and
    /// d(y, c_b) <= d(y, c_a) give d(x, c_b) <= d(x, c_a) + 2T: so x is also listed as a guest
    /// of every partition b with d(x, c_b) <= d(x, c_a) + 2T, and each partition is joined with
    /// itself (upper triangle) and with its guests. By symmetry y is a guest of a as well, so a
    /// cross pair is taken only in the partition of the higher home id; no pair is lost and
    /// none is found twice. For angular data the bound uses the chord length sqrt(2T).
    func fastJoin(_ vectors: FloatMatrix, metric: Metric, threshold: Double, spillingTo spillDirectory: String? = nil) throws -> ([(Int32, Int32, Float)], Int) {
        let plan = try fastPlan(vectors, metric: metric, threshold: threshold, centroids: nil, spillingTo: spillDirectory)
        return (try fastJoin(plan, partitions: 0..<plan.partitions), plan.partitions)
    }

    /// The partitions of a fast join and each one's guests: what a shard of it and a whole
    /// run derive alike from the centroids.
    struct FastPlan {
        var vectors: FloatMatrix
        var metric: Metric
        var threshold: Double
        var partitions: Int
        var members: [[Int32]]
        var guests: [[Int32]]
        var layout: CellLayout?

        /// Pairs the join of partition `p` scores (its home rows against home and guests).
        func work(_ p: Int) -> Int { members[p].count * (members[p].count + guests[p].count) }
    }

    /// The fast join's partitioning settings for a set of `rows`.
    func fastCellConfig(rows n: Int) -> CellPartition.Config {
        let partitions = max(1, min(config.partitions > 0 ? config.partitions : n / 2000, n))
        var cellConfig = CellPartition.Config(cells: partitions, width: config.nprobe > 0 ? config.nprobe + 1 : 32)
        cellConfig.seed = config.seed
        cellConfig.threads = config.threads
        cellConfig.label = "dedup partitions"
        return cellConfig
    }

    /// The centroids of the fast join's partitions (a sharded dedup's shared work).
    public func fastCentroids(_ vectors: FloatMatrix) throws -> FloatMatrix {
        try CellPartition.trainCentroids(vectors, config: fastCellConfig(rows: vectors.rows), logger: logger)
    }

    /// The partitions (by `centroids` when given, else a k-means here) and their guests.
    func fastPlan(_ vectors: FloatMatrix, metric: Metric, threshold: Double, centroids: FloatMatrix?, spillingTo spillDirectory: String?) throws -> FastPlan {
        // The triangle inequality needs a distance.
        guard metric != .ip else {
            throw SimjobError("dedup --mode fast needs a distance (euclidean or angular); use --mode exact for ip")
        }
        let n = vectors.rows
        let chordThreshold = metric == .angular ? (2 * threshold).squareRoot() : threshold

        // Each row's distance to every centroid would cost n x partitions; instead take, per row,
        // its home and the centroids within reach through one k-NN search of modest width.
        let probing = config.nprobe > 0
        let cellConfig = fastCellConfig(rows: n)
        let cells = if let centroids {
            try CellPartition(vectors, centroids: centroids, width: cellConfig.width, threads: config.threads)
        } else {
            try CellPartition(vectors, config: cellConfig)
        }
        let partitions = cells.cells
        // Spilled, the rows are gathered from a copy laid out by partition (a partition's home
        // rows contiguous, guests mostly from nearby partitions), not from the set's row order.
        let window = CellLayout.spillWindow(memoryLimit: config.memoryLimit, state: Dedup.memoryPlan(rows: n, dimension: vectors.columns, config: config).state)
        let layout = try spillDirectory.map { try CellLayout(vectors, cells: cells, spillingTo: $0, windowBytes: window) }
        let reach = cells.width
        let members = cells.members
        var guests = [[Int32]](repeating: [], count: partitions)
        var widest = 0
        for row in 0..<n {
            let own = cells.nearest[row * reach]
            let ownDistance = Double(cells.squaredDistances[row * reach]).squareRoot()
            for slot in 1..<reach {
                let other = cells.nearest[row * reach + slot]
                guard other >= 0 else { break }
                let distance = Double(cells.squaredDistances[row * reach + slot]).squareRoot()
                // Rounding slack of 1e-5 relative: a guest too many costs a little time; one too
                // few would lose pairs.
                guard distance <= (ownDistance + 2 * chordThreshold) * (1 + 1e-5) + 1e-6 else { break }
                // Exact rule: a cross pair is taken in the higher home's cell only. With nprobe, a
                // row is a guest of each of its probed cells, so a pair is found from either side
                // (and twice when from both: repeats are dropped after sorting).
                if probing || other > own { guests[Int(other)].append(Int32(row)) }
                if !probing && slot == reach - 1 { widest += 1 }
            }
        }
        if widest > 0 {
            logger?.info("dedup: \(widest) rows reach more than \(reach - 1) neighbouring partitions; pairs through the farther ones may be missed (the sampled recall shows it)")
        }

        return FastPlan(vectors: vectors, metric: metric, threshold: threshold, partitions: partitions, members: cells.members, guests: guests,
                        layout: layout)
    }

    /// The pairs the partitions `range` of `plan` find (a whole run: every partition). Each
    /// partition's pairs depend on the plan alone, so shards over ranges of partitions find
    /// together what one run finds.
    func fastJoin(_ plan: FastPlan, partitions range: Range<Int>) throws -> [(Int32, Int32, Float)] {
        let threshold = plan.threshold
        let sink = PairSink(limit: config.maxPairs)
        // Largest work first, so the last partitions to finish are small.
        let partitions = Array(range).sorted { plan.work($0) > plan.work($1) }
        let progress = ProgressDisplay("dedup join", total: range.reduce(0) { $0 + plan.members[$1].count }, unit: "rows", style: progressStyle, logger: logger)
        try BlockedJoin.run(items: partitions.count, threads: max(1, min(threadCount, partitions.count)), progress: progress,
                            weight: { plan.members[partitions[$0]].count }, stop: { sink.overflow }) { item, worker in
            let found = Self.joinPartition(partitions[item], of: plan, worker: worker)
            if !found.isEmpty { sink.append(found) }
        }
        progress.finish()
        try Cancellation.check()
        if sink.overflow { throw tooManyPairs(threshold) }
        return sink.pairs
    }

    /// The pairs one partition finds: its home rows against themselves (upper triangle) and
    /// against its guests, every pair within the plan's threshold with its exact score.
    static func joinPartition(_ partition: Int, of plan: FastPlan, worker: BlockedJoin.Worker) -> [(Int32, Int32, Float)] {
        let ids = plan.members[partition] + plan.guests[partition]
        let homeCount = plan.members[partition].count
        guard homeCount > 0 else { return [] }
        let metric = plan.metric, threshold = plan.threshold
        let maxScore = Dedup.scoreBound(threshold, metric: metric)
        let all = ExactKNN.Chunk(vectors: plan.layout?.vectors ?? plan.vectors, start: 0)
        // The partition's rows (home first, then guests) in one chunk; home x home is the
        // upper triangle, home x guest every pair (column > row holds).
        let chunk = ExactKNN.Chunk(gathering: plan.layout.map { laid in ids.map { laid.positions[Int($0)] } } ?? ids, from: all)
        var found: [(Int32, Int32, Float)] = []
        worker.tiles(chunk, 0..<homeCount, against: chunk, 0..<ids.count, upperTriangle: true) { tile, _, _ in
            RangeScan.scan(tile, metric: metric, maxScore: maxScore, upperTriangle: true) { i, j, score in
                guard Double(metric.reportedDistance(fromScore: score)) <= threshold else { return }
                let a = ids[i], b = ids[j]
                found.append(a < b ? (a, b, score) : (b, a, score))
            }
        }
        return found
    }

    /// The partitions of shard `index` of `count`: runs of partitions holding about equal
    /// shares of the join's work.
    static func shardPartitions(_ plan: FastPlan, shard: (index: Int, count: Int)) -> Range<Int> {
        var prefix = [0]
        for p in 0..<plan.partitions { prefix.append(prefix.last! + plan.work(p)) }
        let total = prefix.last!
        func cut(_ i: Int) -> Int {
            i == shard.count ? plan.partitions : min(plan.partitions, prefix.firstIndex { $0 * shard.count >= total * i } ?? plan.partitions)
        }
        let first = cut(shard.index)
        return first..<max(first, cut(shard.index + 1))
    }

    /// One shard of the fast join, by the prepared `centroids`: the pairs its partitions find.
    public func fastShardPairs(_ vectors: FloatMatrix, metric: Metric, centroids: FloatMatrix, shard: (index: Int, count: Int),
                               spillingTo spillDirectory: String? = nil) throws -> (partitions: Range<Int>, pairs: [(Int32, Int32, Float)]) {
        let largest = try largestThreshold(metric: metric)
        let plan = try fastPlan(vectors, metric: metric, threshold: largest, centroids: centroids, spillingTo: spillDirectory)
        let range = Self.shardPartitions(plan, shard: shard)
        return (range, try fastJoin(plan, partitions: range))
    }

    /// The result of a fast join from its pairs (a whole run's, or all its shards'): the groups,
    /// with the pair recall sampled on the vectors.
    public func fastMerge(_ vectors: FloatMatrix, metric: Metric, pairs: [(Int32, Int32, Float)], partitions: Int,
                          started: Double = ProgressDisplay.now()) throws -> DedupResult {
        let largest = try largestThreshold(metric: metric)
        var recall: Double?
        if config.recallSample > 0 {
            recall = try sampledRecall(vectors, metric: metric, threshold: largest, found: pairs)
            logger?.info("dedup: fast mode found \(String(format: "%.5f", recall!)) of the exact pairs of \(min(config.recallSample, vectors.rows)) sampled rows")
        }
        var result = try groups(rows: vectors.rows, pairs: pairs, metric: metric, vectors: vectors, started: started)
        result.sampledPairRecall = recall
        result.partitions = partitions
        return result
    }

    /// Share of the exact pairs touching a seeded sample of rows that `found` contains.
    func sampledRecall(_ vectors: FloatMatrix, metric: Metric, threshold: Double, found: [(Int32, Int32, Float)]) throws -> Double {
        let sample = sampleIndices(min(config.recallSample, vectors.rows), from: vectors.rows, seed: config.seed &+ 17)
        let sampled = Set(sample.map(Int32.init))
        let all = ExactKNN.Chunk(vectors: vectors, start: 0)
        let queryChunk = ExactKNN.Chunk(gathering: sample.map(Int32.init), from: all)
        let maxScore = Dedup.scoreBound(threshold, metric: metric)
        var expected = Set<Int64>()
        let block = ExactKNNConfig.defaultBlock
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: block * block)
        defer { scratch.deallocate() }
        for row in stride(from: 0, to: sample.count, by: block) {
            for column in stride(from: 0, to: vectors.rows, by: block) {
                let tile = queryChunk.tile(row..<min(row + block, sample.count), against: all, column..<min(column + block, vectors.rows), scratch: scratch)
                RangeScan.scan(tile, metric: metric, maxScore: maxScore, upperTriangle: false) { i, j, score in
                    let a = sample[i]
                    guard a != j, Double(metric.reportedDistance(fromScore: score)) <= threshold else { return }
                    expected.insert(Int64(min(a, j)) << 32 | Int64(max(a, j)))
                }
            }
        }
        guard !expected.isEmpty else { return 1 }
        var hits = 0
        let foundKeys = Set(found.lazy.filter { sampled.contains($0.0) || sampled.contains($0.1) }.map { Int64($0.0) << 32 | Int64($0.1) })
        for key in expected where foundKeys.contains(key) { hits += 1 }
        return Double(hits) / Double(expected.count)
    }

    // MARK: grouping

    /// Groups at one threshold: connected components of the pairs within it, one kept each.
    static func group(
        rows: Int, pairs: [(Int32, Int32, Float)], distances: [Float], threshold: Double, keep: DedupConfig.Keep, vectors: FloatMatrix?
    ) -> DedupGroups {
        var sets = UnionFind(count: rows)
        var count = 0
        for (index, pair) in pairs.enumerated() where Double(distances[index]) <= threshold {
            sets.union(Int(pair.0), Int(pair.1))
            count += 1
        }
        // Number groups by their lowest row: walking rows in order meets each root first there.
        var groupOfRoot = [Int32](repeating: -1, count: rows)
        var sizes: [Int] = []
        var group = [Int32](repeating: -1, count: rows)
        for row in 0..<rows where sets.size(of: row) > 1 {
            let root = sets.find(row)
            if groupOfRoot[root] < 0 {
                groupOfRoot[root] = Int32(sizes.count)
                sizes.append(0)
            }
            group[row] = groupOfRoot[root]
            sizes[Int(group[row])] += 1
        }
        var keepFlags = [UInt8](repeating: 1, count: rows)
        var representative = [Int](repeating: -1, count: sizes.count)
        switch keep {
        case .first:
            for row in 0..<rows where group[row] >= 0 {
                if representative[Int(group[row])] < 0 { representative[Int(group[row])] = row }
            }
        case .centroid:
            let vectors = vectors!
            let d = vectors.columns
            var sums = [Double](repeating: 0, count: sizes.count * d)
            for row in 0..<rows where group[row] >= 0 {
                let base = Int(group[row]) * d
                for j in 0..<d { sums[base + j] += Double(vectors.row(row)[j]) }
            }
            var best = [Double](repeating: .infinity, count: sizes.count)
            for row in 0..<rows where group[row] >= 0 {
                let g = Int(group[row])
                var distance = 0.0
                for j in 0..<d {
                    let difference = Double(vectors.row(row)[j]) - sums[g * d + j] / Double(sizes[g])
                    distance += difference * difference
                }
                if distance < best[g] { best[g] = distance; representative[g] = row }
            }
        }
        for row in 0..<rows where group[row] >= 0 && representative[Int(group[row])] != row { keepFlags[row] = 0 }
        var histogram = [Int](repeating: 0, count: (sizes.max() ?? 1) + 1)
        for size in sizes { histogram[size] += 1 }
        let largest = sizes.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }
            .prefix(10).map { (id: Int32($0.offset), size: $0.element) }
        return DedupGroups(
            threshold: threshold, group: group, keep: keepFlags, pairs: count, groupCount: sizes.count,
            rowsRemoved: rows - keepFlags.reduce(0) { $0 + Int($1) }, largestGroups: Array(largest), sizeHistogram: histogram)
    }
}

/// Disjoint sets with union by size and path halving.
struct UnionFind {
    private var parent: [Int32]
    private var sizes: [Int32]

    init(count: Int) {
        parent = (0..<Int32(count)).map { $0 }
        sizes = [Int32](repeating: 1, count: count)
    }

    mutating func find(_ element: Int) -> Int {
        var node = element
        while Int(parent[node]) != node {
            parent[node] = parent[Int(parent[node])]
            node = Int(parent[node])
        }
        return node
    }

    mutating func union(_ a: Int, _ b: Int) {
        var rootA = find(a), rootB = find(b)
        guard rootA != rootB else { return }
        if sizes[rootA] < sizes[rootB] { swap(&rootA, &rootB) }
        parent[rootB] = Int32(rootA)
        sizes[rootA] += sizes[rootB]
    }

    mutating func size(of element: Int) -> Int { Int(sizes[find(element)]) }
}
