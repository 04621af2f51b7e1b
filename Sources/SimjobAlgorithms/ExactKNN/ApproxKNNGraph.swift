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
    /// k-means cells the set is split into; 0 picks n / 1000 up to a million rows, sqrt(n) above
    /// (at least 1). Default 0.
    public var partitions: Int = 0
    /// Cells each row searches: its own and the nearest others. More cells, higher recall;
    /// `nprobe = partitions` is exact. Ignored when `recall` is set. Default 2.
    public var nprobe: Int = 2
    /// Rounds of NN-descent's local join after the cell search: rows that share a neighbour
    /// are scored against each other (see `LocalJoin`). Ignored when `recall` is set. Default 2.
    public var rounds: Int = 2
    /// Target sampled recall (0-1): the engine picks nprobe and the rounds itself, measuring
    /// recall on `recall_sample` rows as it goes, and stops once the interval's lower end
    /// reaches the target. Nil uses `nprobe` and `rounds` as given. Default nil.
    public var recall: Double? = nil
    /// Rows whose exact neighbours measure the recall reported (seeded; 0 skips the measure
    /// unless `recall` is set, which needs at least 100). Their exact search costs about
    /// `recall_sample / n` of an exact graph. Default 500.
    public var recallSample: Int = 500
    /// Dimension candidates are ranked in before they are re-scored exactly: the leading
    /// principal components. 0 chooses: 128 (at most a third of the input's) from 192 input
    /// dimensions up, widened (to half the input's at most, and 256) while the components hold
    /// less than 90 % of the variance; the full vectors below 192. A value at or above the
    /// input's dimension keeps the full vectors. Default 0.
    public var dimension: Int = 0
    /// Candidates each row keeps in the reduced space and re-scores exactly at the end; 0 picks
    /// 3 x k when the dimension is reduced (4 x k with a recall target when the reduced space
    /// holds less than 90 % of the variance; k when it is not reduced). Default 0.
    public var candidates: Int = 0
    /// List entries (and reverse neighbours) of each row joined in a refinement round; 0 picks
    /// 2 x k (3 x k with a recall target; at most the candidates). Default 0.
    public var expand: Int = 0
    /// Memory the graph may take (vectors, lists, join state), e.g. `8G`; nil is half of RAM.
    /// When the estimate (`memoryPlan`) is above it, the full vectors go to a spill file beside
    /// the output, laid out by cell (about twice their size on disk while it runs); a set whose
    /// other state alone is above it is refused before it is read. Default nil.
    public var memoryLimit: ByteCount? = nil
    /// Iterations of the partitioning k-means. Default 10.
    public var iterations: Int = 10
    /// Seed of the k-means. Default 1.
    public var seed: UInt64 = 1
    /// Worker threads; nil uses every core.
    public var threads: Int? = nil

    public init(k: Int = 10) { self.k = k }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case k, metric, partitions, nprobe, rounds, recall, recallSample = "recall_sample", dimension, candidates, expand, memoryLimit = "memory_limit", iterations, seed, threads
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
    /// Refinement rounds run.
    public var rounds = 0
    /// Dimension candidates were ranked in (the input's when not reduced).
    public var dimension = 0
    /// Candidates kept per row and re-scored exactly (k when not reduced).
    public var candidates = 0
    /// Share of the variance the reduced space holds (1 when not reduced).
    public var captured = 1.0
    /// The target asked for, if any.
    public var recallTarget: Double?
    /// Seconds per stage, in order: projection, cells, sample, search, refinement, re-scoring.
    public var stageSeconds: [(String, Double)] = []
    /// Recall measured on the sample at the end, if measured.
    public var sampledRecall: SampledRecall.Measure?
    /// With a recall target: cells the first search visited before any join round, and the
    /// sampled recall it left.
    public var firstSearch: (nprobe: Int, recall: Double)?
    /// With a recall target: forward (and reverse) neighbours of a row's first join set.
    public var firstJoinSize: Int?
    /// With a recall target the reduced space could not reach: its dimension and the recall it
    /// levelled off at, before the graph was built again in the full space.
    public var reducedAttempt: (dimension: Int, recall: Double)?
    /// Bytes of vectors held in spill files rather than in memory (0: none).
    public var spilledBytes = 0

    /// One line: rows, k, cells, nprobe, rounds, time, candidates, sampled recall.
    public var summary: String {
        var text = String(format: "%d rows, k=%d, %d cells, nprobe=%d, %d rounds", rows, k, partitions, nprobe, rounds)
        if candidates > k { text += String(format: ", ranked in %d dimensions, %d re-scored", dimension, candidates) }
        text += String(format: ": %.2f s, %.0f candidates per row (exact: %d)", seconds, candidatesPerRow, rows - 1)
        if let measured = sampledRecall {
            text += String(format: ", sampled recall %.4f [%.4f, %.4f] on %d rows", measured.recall, measured.low, measured.high, measured.rows)
        }
        if let target = recallTarget { text += String(format: " (target %.4g)", target) }
        if let attempt = reducedAttempt {
            text += String(format: ", built in the full space after %d dimensions levelled off at %.4f", attempt.dimension, attempt.recall)
        }
        if spilledBytes > 0 { text += ", vectors spilled to disk (\(formatBytes(spilledBytes)))" }
        return text
    }
}

/// An approximate all-pairs k-NN graph by inverted-file search of the set against itself.
///
/// From 192 dimensions up, candidates are ranked in the leading principal components
/// (`Projection`). A k-means splits the rows into cells, laid out cell by cell (`CellLayout`);
/// every row searches the `nprobe` cells whose centroids are nearest to it (its own among them)
/// by sgemm tiles, then rounds of NN-descent's local join (`LocalJoin`) refine the lists. Each
/// row's candidates are re-scored exactly from the full vectors at the end, so distances are
/// exact and ties broken by id. Work per row is about `nprobe x n / partitions` pairs for the
/// search plus the joins, instead of n.
public struct ApproxKNNGraph {
    public let config: ApproxKNNConfig
    public var logger: Logger?
    public var progressStyle: ProgressDisplay.Style = .silent
    /// The product the search ranks candidates with in a reduced space: auto (int8 or bf16
    /// where this CPU multiplies them at least twice as fast as sgemm, see `GEMMCalibration`),
    /// or one format (tests compare them). The full-space search always scores exactly.
    public var rankingProduct: GEMMChoice = .auto

    public init(config: ApproxKNNConfig) { self.config = config }

    var threadCount: Int { max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount) }

    /// The graph of `vectors` (normalised already for angular).
    ///
    /// Steps: the projection (when reduced); the cell partition and layout; each row's search of
    /// its `nprobe` nearest cells; join rounds; exact re-scoring. With a recall target, a sample
    /// of rows with exact neighbours guides them: the search starts at nprobe 2 and doubles while
    /// its recall alone is far below the target, join rounds (sets sized by the gap left) follow
    /// while they gain (at most `roundsPerWidth` at one width), then the search widens.
    ///
    /// With `reorderingInPlace`, a graph built in the full space lays the rows out by cell in
    /// `vectors` itself rather than in a copy (half the memory); `vectors` is then left in that
    /// order, for callers that have no further use for it.
    ///
    /// With `spillingTo` (a set above the memory limit, `vectors` then in a spill file
    /// itself), the full vectors are laid out by cell into a spill file in that directory
    /// (`CellLayout(_:cells:spillingTo:)`), read in row order and written cell run by cell run;
    /// the search, joins and re-scoring then read them cell by cell. The graph is the same.
    ///
    /// A sharded graph passes `prepared` (the shards' shared projection and centroids, see
    /// `prepare`) and `searched`, which fills the lists (by position, as `searchShard` left
    /// them) from the shards' files and returns the pairs they scored, in place of the search:
    /// the joins and the re-scoring then run here on exactly the lists a whole run has.
    ///
    /// A recall target that the automatic reduced space cannot reach (the ranking, not the
    /// search, loses the neighbours: clusters whose rows differ in directions the leading
    /// components leave out) builds the graph again in the full space, and says so.
    public func graph(_ vectors: FloatMatrix, metric: Metric, reorderingInPlace: Bool = false, spillingTo spillDirectory: String? = nil,
                      prepared: Prepared? = nil, searched: ((NeighborLists, CellLayout) throws -> Int)? = nil) throws -> (NeighborTable, ApproxKNNStats) {
        let first = try graphOnce(vectors, metric: metric, reorderingInPlace: reorderingInPlace, spillingTo: spillDirectory,
                                  prepared: prepared, searched: searched)
        guard let target = config.recall, prepared == nil, config.dimension == 0, first.1.dimension < vectors.columns,
              let measured = first.1.sampledRecall, measured.low < target else { return first }
        logger?.warning("approximate graph: ranked in \(first.1.dimension) of \(vectors.columns) dimensions, recall levels off at \(String(format: "%.4f", measured.recall)); building it again in the full space")
        var fullConfig = config
        fullConfig.dimension = vectors.columns
        var full = ApproxKNNGraph(config: fullConfig)
        full.logger = logger
        full.progressStyle = progressStyle
        full.rankingProduct = rankingProduct
        var (table, stats) = try full.graphOnce(vectors, metric: metric, reorderingInPlace: reorderingInPlace, spillingTo: spillDirectory,
                                                prepared: nil, searched: nil)
        stats.seconds += first.1.seconds
        stats.reducedAttempt = (first.1.dimension, measured.recall)
        return (table, stats)
    }

    func graphOnce(_ vectors: FloatMatrix, metric: Metric, reorderingInPlace: Bool, spillingTo spillDirectory: String?,
                   prepared: Prepared?, searched: ((NeighborLists, CellLayout) throws -> Int)?) throws -> (NeighborTable, ApproxKNNStats) {
        let started = ProgressDisplay.now()
        let n = vectors.rows
        try checkSettings(rows: n)
        if searched != nil && config.recall != nil { throw SimjobError("an approximate graph with a recall target does not run in shards") }
        let partitions = partitionCount(rows: n)

        // Candidates are ranked in the reduced space (when there is one) and re-scored exactly.
        var clock = ProgressDisplay.now()
        var stageSeconds: [(String, Double)] = []
        func stage(_ name: String) {
            let now = ProgressDisplay.now()
            stageSeconds.append((name, now - clock))
            clock = now
        }
        let setup = try setUp(vectors, metric: metric, prepared: prepared, stage: stage)
        let (projection, space, spaceMetric, width, cells) = (setup.projection, setup.space, setup.spaceMetric, setup.width, setup.cells)
        // The sample's exact neighbours come first: they read the rows in their own order.
        let sampleSize = config.recall != nil ? max(config.recallSample, 100) : config.recallSample
        // A reduced copy of the rows for the sample's product only when it fits beside the plan
        // (at most half the vectors' size, freed once the sample is found) and nothing spills.
        let plan = Self.memoryPlan(rows: n, dimension: vectors.columns, config: config)
        let reducedFits = spillDirectory == nil
            && plan.vectors + plan.state + n * ReducedRows.bytesPerRow(format: .bf16, dimension: vectors.columns) <= ProcessMemory.limit(config.memoryLimit)
        let sample = sampleSize > 0
            ? try SampledRecall(vectors, metric: metric, k: config.k, size: sampleSize, seed: config.seed, threads: config.threads,
                                gemm: reducedFits ? SampledRecall.product(rows: min(sampleSize, n), base: n, dimension: vectors.columns) : .fp32)
            : nil
        stage("sample")
        let window = CellLayout.spillWindow(memoryLimit: config.memoryLimit, state: plan.state)
        let layout = if let spillDirectory, projection == nil {
            try CellLayout(space, cells: cells, spillingTo: spillDirectory, windowBytes: window)
        } else {
            CellLayout(space, cells: cells, inPlace: reorderingInPlace || projection != nil)
        }
        // The full vectors in position order: the layout's own in the full space; a spilled
        // copy in a reduced one, so that re-scoring reads them cell by cell; else none.
        let fullByPosition: FloatMatrix? = if projection == nil {
            layout.vectors
        } else if let spillDirectory {
            try CellLayout.scatter(vectors, positions: layout.positions, spillingTo: spillDirectory, windowBytes: window)
        } else {
            nil
        }
        // The search's cost grows with the sum of squared cell sizes: say how uneven they are.
        let largestCell = (0..<layout.cellCount).map { layout.cell($0).count }.max() ?? 0
        logger?.info("approximate graph: \(layout.cellCount) cells, largest \(largestCell) rows, imbalance \(String(format: "%.2f", IVFPQIndex.listImbalance(layout.starts)))")
        // The ranking products' encoding, made once for every search of this graph.
        let ranks = projection == nil || searched != nil ? nil
            : try rankEncoding(layout, slots: config.recall != nil ? 2 : min(config.nprobe, partitions))
        defer { ranks?.deallocate() }
        if spillDirectory != nil {
            stage("spill")
            logger?.info("approximate graph: vectors laid out by cell in a spill file in \(spillDirectory!) (\(formatBytes(vectors.byteCount)))")
        }
        // Row `r` of the full vectors, wherever the layout left it.
        let fullRow: (Int) -> UnsafeMutablePointer<Float> = { row in
            fullByPosition?.row(Int(layout.positions[row])) ?? vectors.row(row)
        }
        // Lists are kept by position (see CellLayout), candidates as positions.
        let lists = NeighborLists.emptied(rows: n, k: width, threads: threadCount)
        defer { lists.deallocate() }
        let measure: () -> SampledRecall.Measure = {
            sample!.measure(row: fullRow, dimension: vectors.columns, metric: metric) { row in
                let position = Int(layout.positions[row])
                return (0..<width).map { lists.ids[position * width + $0] }.filter { $0 != NeighborLists.emptyID }.map { layout.rows[Int($0)] }
            }
        }
        var stats = ApproxKNNStats()
        stats.rows = n
        stats.k = config.k
        stats.partitions = partitions
        stats.recallTarget = config.recall
        stats.dimension = projection?.outputDimension ?? vectors.columns
        stats.candidates = width
        stats.captured = projection?.captured ?? 1
        var scored = 0
        // Join sets of 2 x k entries and as many reverse neighbours. A recall target sizes them
        // from what the search left: k when it came close (see `narrowJoinWithin`), 3 x k when
        // even the widest search left recall far below (`searchWidensBelow`).
        let (expand, widerExpand) = Self.joinSizes(width: width, config: config)
        let narrowExpand = config.expand > 0 ? config.expand : min(width, config.k)
        let join = LocalJoin(expand: expand, reverse: expand, threads: threadCount)
        // In the full space, proposals are re-scored exactly before they enter a list.
        if projection == nil { join.exactVectors = layout.vectors }
        // Pairs of the first round at this search width, and of the last round.
        var firstRoundPairs = 0, lastRoundPairs = 0
        func joinRound() throws -> Int {
            let (inserted, pairs) = try join.round(layout.vectors, norms: layout.norms, metric: spaceMetric, lists: lists)
            if firstRoundPairs == 0 { firstRoundPairs = pairs }
            lastRoundPairs = pairs
            scored += 2 * pairs
            stats.rounds += 1
            logger?.info("approximate graph: local join \(stats.rounds): \(pairs) pairs, \(inserted) list entries changed")
            return inserted
        }
        if let target = config.recall, sample != nil {
            // Two cells to start (with one, every list stays inside its cell and joins find
            // nothing new); then join rounds while they gain, a wider search when they stop.
            var nprobe = min(2, cells.width)
            scored += try searchCells(layout, metric: spaceMetric, cells: cells, slots: 0..<nprobe, into: lists, exact: projection == nil, ranks: ranks)
            var measured = measure()
            // A search that leaves recall far below the target widens before any join round:
            // joins lift a list from its search's candidates, and from too few they level off
            // (MiniLM sentence embeddings, 192 dimensions: nprobe 2 alone 0.65, and 2 x k joins
            // stopped near 0.94 after 5 rounds; nprobe 4 alone 0.77 reached 0.966 in 3 rounds,
            // 1.3 s where the nprobe-2 path took 2.6 s).
            while measured.recall < target - Self.searchWidensBelow && nprobe < cells.width {
                let wider = min(nprobe * 2, cells.width)
                scored += try searchCells(layout, metric: spaceMetric, cells: cells, slots: nprobe..<wider, into: lists, exact: projection == nil, ranks: ranks)
                nprobe = wider
                measured = measure()
                logger?.info("approximate graph: nprobe \(nprobe), 0 rounds: sampled recall \(String(format: "%.4f", measured.recall))")
            }
            stage("search")
            stats.firstSearch = (nprobe, measured.recall)
            // Wider join sets (3 x k) only when even the widest search leaves recall that far
            // below: a round of them costs about twice one of 2 x k (MiniLM: 0.64 s against 0.3 s).
            // Sets of k when the search came within `narrowJoinWithin`: a round's pairs grow as
            // the square of the set, and small sets close a small gap (Fashion-MNIST, search
            // alone 0.911: two rounds of k reached 0.964 in 0.13 s, one of 2 x k 0.971 in 0.31 s;
            // MiniLM, 0.765: rounds of k levelled off at 0.916, so it keeps 2 x k).
            join.resize(to: Self.joinSize(afterSearch: measured.recall, target: target, narrow: narrowExpand, usual: expand, wider: widerExpand))
            stats.firstJoinSize = join.expand
            var gain = 1.0, inserted = n, roundsAtThisWidth = 0
            while measured.low < target {
                // Rounds while they gain, at most `roundsPerWidth` at one search width: on hard
                // data every round gains a little, and a wider search then costs less per gain.
                // Up to `cheapRoundsPerWidth` while the last round scored under a tenth of the
                // first's pairs: such a round costs much less than a wider search (MiniLM: a
                // fifth round of 2.7M pairs reached the target where the wider search scored
                // 2,200 more pairs per row).
                let cheap = lastRoundPairs > 0 && lastRoundPairs * 10 < firstRoundPairs
                let roundsAllowed = cheap ? Self.cheapRoundsPerWidth : Self.roundsPerWidth
                if gain >= 0.004 && inserted > 0 && roundsAtThisWidth < roundsAllowed && stats.rounds < Self.maximumRounds {
                    inserted = try joinRound()
                    roundsAtThisWidth += 1
                } else if join.expand < expand && stats.rounds < Self.maximumRounds {
                    // Narrow sets that stopped gaining give way to the usual ones before the
                    // search widens: the lists' candidates are not yet exhausted.
                    join.resize(to: expand)
                    firstRoundPairs = 0
                    inserted = try joinRound()
                    roundsAtThisWidth = 1
                } else if nprobe < cells.width {
                    let wider = min(nprobe < 4 ? nprobe * 2 : nprobe + nprobe / 2, cells.width)
                    scored += try searchCells(layout, metric: spaceMetric, cells: cells, slots: nprobe..<wider, into: lists, exact: projection == nil, ranks: ranks)
                    nprobe = wider
                    firstRoundPairs = 0
                    inserted = n
                    roundsAtThisWidth = 0
                } else if inserted > 0 && stats.rounds < Self.maximumRounds {
                    inserted = try joinRound()
                } else {
                    break
                }
                let next = measure()
                gain = next.recall - measured.recall
                measured = next
                logger?.info("approximate graph: nprobe \(nprobe), \(stats.rounds) rounds: sampled recall \(String(format: "%.4f", measured.recall))")
            }
            stage("refinement")
            if measured.low < target {
                logger?.warning("approximate graph: sampled recall \(String(format: "%.4f", measured.recall)) stays below the target \(target) at nprobe \(nprobe) (of \(cells.width) ranked cells)")
            }
            stats.nprobe = nprobe
            stats.sampledRecall = measured
        } else {
            let nprobe = min(config.nprobe, partitions)
            if let searched {
                scored += try searched(lists, layout)
            } else {
                scored += try searchCells(layout, metric: spaceMetric, cells: cells, slots: 0..<nprobe, into: lists, exact: projection == nil, ranks: ranks)
            }
            stage("search")
            for _ in 0..<config.rounds { _ = try joinRound() }
            stage("refinement")
            stats.nprobe = nprobe
            stats.sampledRecall = sample.map { _ in measure() }
        }
        stats.candidatesPerRow = Double(scored) / Double(n)
        if spillDirectory != nil { stats.spilledBytes = vectors.byteCount }
        // In the full space every list entry was scored exactly on the way in (the search's
        // exact scan, the join's exact re-score): only positions become rows. In a reduced one
        // the candidates are re-scored from the full vectors.
        let final = projection == nil
            ? relabel(lists, layout: layout)
            : try rerank(vectors, byPosition: fullByPosition, metric: metric, candidates: lists, layout: layout, k: config.k)
        stage("re-scoring")
        stats.stageSeconds = stageSeconds
        logger?.info("approximate graph stages: \(stageSeconds.map { "\($0.0) \(String(format: "%.2f", $0.1)) s" }.joined(separator: ", "))")
        let table = NeighborTable(converting: final, metric: metric)
        Invariants.check(table, idLimit: n, selfJoin: true, what: "approximate k-NN graph")
        stats.seconds = ProgressDisplay.now() - started
        return (table, stats)
    }

    /// Refuses settings that cannot make a graph of `n` rows.
    func checkSettings(rows n: Int) throws {
        guard config.k >= 1, config.k <= n - 1 else {
            throw SimjobError("k = \(config.k) must be between 1 and n - 1 = \(n - 1) (a row is not its own neighbour)")
        }
        guard config.nprobe >= 1 else { throw SimjobError("nprobe must be at least 1") }
        if let target = config.recall, !(target > 0 && target <= 1) { throw SimjobError("recall must be in (0, 1] (got \(target))") }
    }

    /// Cells for a set of `n` rows: `partitions`, or the automatic count.
    func partitionCount(rows n: Int) -> Int {
        max(1, min(config.partitions > 0 ? config.partitions : Self.automaticPartitions(rows: n), n))
    }

    // MARK: shards

    /// The work the shards of a graph share, done once (`prepare`): the principal components
    /// (nil: candidates are ranked in the full vectors) and the cells' centroids. Every shard
    /// and the merge derive the rest from them and the vectors as a whole run does: the reduced
    /// rows, each row's nearest cells, the layout.
    public struct Prepared: Sendable {
        public var projection: Projection?
        public var centroids: FloatMatrix
        public init(projection: Projection?, centroids: FloatMatrix) {
            self.projection = projection
            self.centroids = centroids
        }
    }

    /// One shard's part of the search: the lists of the rows of a range of home cells, by
    /// position in the layout (`positions`, the layout's `rows` there), candidates as
    /// positions, each row's `width` slots sorted as the search left them.
    public struct SearchedShard: Sendable {
        public var positions: Range<Int>
        public var rows: [Int32]
        public var width: Int
        public var ids: [Int32]
        public var scores: [Float]
        /// Pairs the shard scored.
        public var scored: Int
        public init(positions: Range<Int>, rows: [Int32], width: Int, ids: [Int32], scores: [Float], scored: Int) {
            self.positions = positions
            self.rows = rows
            self.width = width
            self.ids = ids
            self.scores = scores
            self.scored = scored
        }
    }

    /// Whether these settings run in shards: hand settings only (a recall target decides its
    /// search width from the lists of the whole set as it goes).
    public var isShardable: Bool { config.recall == nil }

    /// The shards' shared work on `vectors` (normalised already for angular).
    public func prepare(_ vectors: FloatMatrix, metric: Metric) throws -> Prepared {
        try checkSettings(rows: vectors.rows)
        let projection = try chooseProjection(vectors, metric: metric)
        let space = try projection?.apply(vectors, threads: config.threads) ?? vectors
        let centroids = try CellPartition.trainCentroids(space, config: cellConfig(rows: vectors.rows), logger: logger)
        return Prepared(projection: projection, centroids: centroids)
    }

    /// Shard `shard.index` of `shard.count` of the search: the rows of a run of home cells
    /// holding about `n / count` rows, each searching its `nprobe` nearest cells exactly as in
    /// a whole run (each home cell's rows' lists are filled by that cell's work item alone).
    /// `reorderingInPlace` and `spillingTo` as in `graph`.
    public func searchShard(_ vectors: FloatMatrix, metric: Metric, prepared: Prepared, shard: (index: Int, count: Int),
                            reorderingInPlace: Bool = false, spillingTo spillDirectory: String? = nil) throws -> SearchedShard {
        let n = vectors.rows
        try checkSettings(rows: n)
        guard isShardable else { throw SimjobError("an approximate graph with a recall target does not run in shards") }
        let setup = try setUp(vectors, metric: metric, prepared: prepared, stage: { _ in })
        let layout = if let spillDirectory, setup.projection == nil {
            try CellLayout(setup.space, cells: setup.cells, spillingTo: spillDirectory,
                           windowBytes: CellLayout.spillWindow(memoryLimit: config.memoryLimit, state: Self.memoryPlan(rows: n, dimension: vectors.columns, config: config).state))
        } else {
            CellLayout(setup.space, cells: setup.cells, inPlace: reorderingInPlace || setup.projection != nil)
        }
        let homes = Self.shardCells(starts: layout.starts, shard: shard)
        let positions = layout.starts[homes.lowerBound]..<layout.starts[homes.upperBound]
        let width = setup.width
        // Lists of the shard's rows only (positions from `positions.lowerBound`).
        let lists = NeighborLists.emptied(rows: positions.count, k: width, threads: threadCount)
        defer { lists.deallocate() }
        let nprobe = min(config.nprobe, setup.cells.cells)
        let ranks = setup.projection == nil ? nil : try rankEncoding(layout, slots: nprobe)
        defer { ranks?.deallocate() }
        let scored = try searchCells(layout, metric: setup.spaceMetric, cells: setup.cells, slots: 0..<nprobe, into: lists,
                                     exact: setup.projection == nil, ranks: ranks, homes: homes, listOffset: positions.lowerBound)
        let count = positions.count * width
        return SearchedShard(positions: positions, rows: Array(layout.rows[positions]), width: width,
                             ids: Array(UnsafeBufferPointer(start: lists.ids, count: count)),
                             scores: Array(UnsafeBufferPointer(start: lists.scores, count: count)), scored: scored)
    }

    /// Home cells of a shard: cells in layout order, cut where the rows before reach
    /// `n x index / count` (a shard may hold no cell when there are fewer cells than shards).
    public static func shardCells(starts: [Int], shard: (index: Int, count: Int)) -> Range<Int> {
        let n = starts.last ?? 0, cells = starts.count - 1
        func cut(_ i: Int) -> Int {
            let target = n * i / shard.count
            return i == shard.count ? cells : (starts.firstIndex { $0 >= target } ?? cells)
        }
        return min(cut(shard.index), cells)..<min(max(cut(shard.index), cut(shard.index + 1)), cells)
    }

    /// Copies a shard's search into `lists` (by position), checking that it is a part of this
    /// layout's search: same rows at the same positions, the same list width.
    public static func load(_ shard: SearchedShard, into lists: NeighborLists, layout: CellLayout, source: String) throws {
        let width = lists.k
        guard shard.width == width, shard.positions.upperBound <= lists.rows, shard.rows.count == shard.positions.count,
              shard.ids.count == shard.positions.count * width, shard.scores.count == shard.ids.count else {
            throw SimjobError("\(source): lists of \(shard.rows.count) rows x \(shard.width) at positions \(shard.positions) do not fit this graph (\(lists.rows) rows x \(width))")
        }
        guard zip(shard.rows, layout.rows[shard.positions]).allSatisfy({ $0 == $1 }) else {
            throw SimjobError("\(source): its rows are not the cells' rows at positions \(shard.positions): the shard was searched with other cells")
        }
        guard shard.ids.allSatisfy({ $0 == NeighborLists.emptyID || ($0 >= 0 && Int($0) < lists.rows) }) else {
            throw SimjobError("\(source): a candidate position is out of range 0..<\(lists.rows)")
        }
        let first = shard.positions.lowerBound * width
        shard.ids.withUnsafeBufferPointer { (lists.ids + first).update(from: $0.baseAddress!, count: $0.count) }
        shard.scores.withUnsafeBufferPointer { (lists.scores + first).update(from: $0.baseAddress!, count: $0.count) }
        for position in shard.positions { lists.bounds[position] = lists.scores[position * width + width - 1] }
    }

    /// The space candidates are ranked in and the cells, from `prepared` or computed here.
    struct Setup {
        var projection: Projection?
        var space: FloatMatrix
        var spaceMetric: Metric
        /// Candidates kept per row.
        var width: Int
        var cells: CellPartition
    }

    func cellConfig(rows n: Int) -> CellPartition.Config {
        var cellConfig = CellPartition.Config(cells: partitionCount(rows: n), width: config.recall != nil ? Self.maximumTargetProbes : config.nprobe)
        cellConfig.iterations = config.iterations
        cellConfig.seed = config.seed
        cellConfig.threads = config.threads
        cellConfig.label = "graph partitions"
        return cellConfig
    }

    func setUp(_ vectors: FloatMatrix, metric: Metric, prepared: Prepared?, stage: (String) -> Void) throws -> Setup {
        let n = vectors.rows
        let projection = try prepared.map(\.projection) ?? chooseProjection(vectors, metric: metric)
        if let projection, projection.inputDimension != vectors.columns {
            throw SimjobError("the prepared projection maps \(projection.inputDimension) dimensions, the vectors have \(vectors.columns)")
        }
        let space = try projection?.apply(vectors, threads: config.threads) ?? vectors
        stage("projection")
        let spaceMetric: Metric = projection == nil ? metric : (metric == .ip ? .ip : .euclidean)
        // Without a reduction the lists hold k, scored exactly on the way in.
        let width = min(n - 1, Self.listWidth(reduced: projection != nil, config: config, captured: projection?.captured))
        if let projection {
            logger?.info("approximate graph: candidates ranked in \(projection.outputDimension) of \(vectors.columns) dimensions (\(String(format: "%.1f", 100 * projection.captured)) % of the variance), \(width) per row re-scored exactly")
        }
        let cellConfig = cellConfig(rows: n)
        let cells: CellPartition
        if let prepared {
            guard prepared.centroids.rows == min(cellConfig.cells, n) else {
                throw SimjobError("the prepared cells are \(prepared.centroids.rows), these settings make \(cellConfig.cells)")
            }
            cells = try CellPartition(space, centroids: prepared.centroids, width: cellConfig.width, threads: config.threads)
        } else {
            cells = try CellPartition(space, config: cellConfig, logger: logger)
        }
        stage("cells")
        return Setup(projection: projection, space: space, spaceMetric: spaceMetric, width: width, cells: cells)
    }

    /// Inputs of this dimension and more are reduced when the dimension is chosen automatically.
    static let reductionFrom = 192
    /// An upper estimate of the bytes the graph of `rows x dimension` takes at its peak, in two
    /// parts. `vectors`: the full vectors (laid out in place; in a spill file when the total is
    /// above the memory limit). `state`: the rest, which stays in memory: the reduced copy, the
    /// candidate and final lists, the join's forward, reverse and previous sets and its
    /// per-worker stamps, the cells' rankings. (At 10M x 128 with the defaults it estimates
    /// 10.6 GB in all; the measured peak was 8.25 GiB.)
    public static func memoryPlan(rows n: Int, dimension d: Int, config: ApproxKNNConfig) -> (vectors: Int, state: Int) {
        let reduced = widestReducedDimension(input: d, config: config) ?? reducedDimension(input: d, config: config) ?? 0
        let width = listWidth(reduced: reduced > 0, config: config)
        let (first, wider) = joinSizes(width: width, config: config)
        let expand = config.recall != nil ? wider : first
        let probes = config.recall != nil ? maximumTargetProbes : config.nprobe
        let threads = max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        // The reduced copy in fp32, and in a reduced format for the search's products.
        let perRow = 4 * reduced + (reduced > 0 ? ReducedRows.bytesPerRow(format: .int8, dimension: reduced) : 0) + 8 * width + 8 * config.k + 16 * expand + 8 * probes + 40 + 8 * threads
        return (n * 4 * d, n * perRow)
    }

    /// The whole estimate, `memoryPlan`'s two parts together.
    public static func estimatedBytes(rows n: Int, dimension d: Int, config: ApproxKNNConfig) -> Int {
        let plan = memoryPlan(rows: n, dimension: d, config: config)
        return plan.vectors + plan.state
    }

    /// Cells by default: n / 1000 up to a million rows, then sqrt(n), so that the partition's
    /// cost (rows x cells) and the search's (rows x nprobe x n / cells) grow alike.
    static func automaticPartitions(rows n: Int) -> Int {
        max(1, min(n / 1000, Int(Double(n).squareRoot())))
    }

    /// A recall target widens the first search (doubling nprobe) while its recall alone is more
    /// than this below the target.
    static let searchWidensBelow = 0.2
    /// A recall target joins sets of k (not 2 x k) when the search alone came within this of the
    /// target.
    static let narrowJoinWithin = 0.1

    /// The first join rounds' set size under a recall target, from the recall the search alone
    /// left: `narrow` within `narrowJoinWithin` of the target, `wider` more than
    /// `searchWidensBelow` below it, else `usual`.
    static func joinSize(afterSearch recall: Double, target: Double, narrow: Int, usual: Int, wider: Int) -> Int {
        if recall < target - searchWidensBelow { return wider }
        if recall >= target - narrowJoinWithin { return narrow }
        return usual
    }
    /// Cells a recall target may widen the search to (each row's nearest are ranked up front).
    static let maximumTargetProbes = 16
    /// Join rounds a recall target may run in all, and at one search width before it widens.
    static let maximumRounds = 12
    static let roundsPerWidth = 4
    static let cheapRoundsPerWidth = 6
    /// The reduced dimension chosen automatically (at most a third of the input's): on the real
    /// sets measured (Fashion-MNIST, 784-d; MiniLM sentence embeddings, 384-d) 128 principal
    /// components kept about 98 % of the true 10 nearest neighbours among each row's 30-40
    /// best-ranked candidates, where 64 kept 79-97 %.
    static let automaticReducedDimension = 128

    /// The dimension candidates are ranked in for an input of `d` dimensions, or nil for the
    /// full vectors (a dimension asked at or above the input's, or an automatic one below
    /// `reductionFrom`).
    static func reducedDimension(input d: Int, config: ApproxKNNConfig) -> Int? {
        if config.dimension >= d || (config.dimension == 0 && d < reductionFrom) { return nil }
        return config.dimension > 0 ? config.dimension : min(automaticReducedDimension, (d / 3 + 15) / 16 * 16)
    }

    /// The most an automatic dimension widens to when its components hold less than
    /// `widenBelow` of the variance: half the input's, at most 256 (where int8 sums convert
    /// fastest), or nil when the dimension is given or not reduced. On MiniLM sentence
    /// embeddings (384-d) 128 components hold 80 % of the variance and the ranking saturated
    /// near 0.94 recall; 192 (87 %) reached 0.966 at 2 rounds less work than 128 needed for 0.95.
    static func widestReducedDimension(input d: Int, config: ApproxKNNConfig) -> Int? {
        guard config.dimension == 0, let base = reducedDimension(input: d, config: config) else { return nil }
        let widest = min(256, d / 2 / 16 * 16)
        return widest > base ? widest : nil
    }

    /// The share of the variance below which the automatic dimension widens.
    static let widenBelow = 0.9

    /// Candidates kept per row (before the cap at n - 1): k in the full space; in a reduced one
    /// `candidates`, or 3 x k (4 x k with a recall target), at least k.
    /// With a recall target, 4 x k when the kept components hold less than `wideListsBelow` of
    /// the variance (the estimate, `captured` nil, assumes so).
    static func listWidth(reduced: Bool, config: ApproxKNNConfig, captured: Double? = nil) -> Int {
        guard reduced else { return config.k }
        let wide = config.recall != nil && (captured ?? 0) < wideListsBelow
        return max(config.k, config.candidates > 0 ? config.candidates : (wide ? 4 : 3) * config.k)
    }

    /// A recall target keeps 4 x k candidates per row when the reduced space holds less of the
    /// variance than this, else 3 x k. Where it holds more, the reduced ranking is good enough
    /// for 3 x k: on Fashion-MNIST (93 % in 128 components) 4 x k reached the same recall
    /// 0.3 s later; on MiniLM sentence embeddings (80 %) 3 x k needed more rounds.
    static let wideListsBelow = 0.9

    /// Join set sizes (forward entries, and as many reverse neighbours): the first rounds', and
    /// the wider one a recall target may switch to; `expand` when given, else 2 x k and 3 x k,
    /// at most the list width.
    static func joinSizes(width: Int, config: ApproxKNNConfig) -> (first: Int, wider: Int) {
        if config.expand > 0 { return (config.expand, config.expand) }
        return (min(width, 2 * config.k), min(width, 3 * config.k))
    }

    /// The principal-component projection candidates are ranked in, or nil for the full vectors.
    func chooseProjection(_ vectors: FloatMatrix, metric: Metric) throws -> Projection? {
        guard let dimension = Self.reducedDimension(input: vectors.columns, config: config) else { return nil }
        var projectionConfig = Projection.Config()
        projectionConfig.dimension = dimension
        projectionConfig.widenTo = Self.widestReducedDimension(input: vectors.columns, config: config) ?? 0
        projectionConfig.variance = Self.widenBelow
        projectionConfig.centered = metric != .ip
        projectionConfig.seed = config.seed
        projectionConfig.threads = config.threads
        return try Projection(vectors, config: projectionConfig)
    }

    /// Lists by position with candidates as positions, scored exactly already, as lists by row
    /// (ties re-broken by row id).
    func relabel(_ lists: NeighborLists, layout: CellLayout) -> NeighborLists {
        let n = lists.rows, width = lists.k
        let result = NeighborLists.emptied(rows: n, k: width, threads: threadCount)
        for position in 0..<n {
            let row = Int(layout.rows[position])
            for slot in 0..<width {
                let candidate = lists.ids[position * width + slot]
                guard candidate != NeighborLists.emptyID else { break }
                result.insert(row: row, score: lists.scores[position * width + slot], id: layout.rows[Int(candidate)])
            }
        }
        return result
    }

    /// Each row's best `k` of its `candidates` (lists by position, candidates as positions),
    /// scored exactly from the full vectors (`laid` in position order when given, else
    /// `vectors` in row order), as lists by row. Rows are visited in position order
    /// (cell by cell, so candidates stay in cache).
    func rerank(_ vectors: FloatMatrix, byPosition laid: FloatMatrix?, metric: Metric, candidates: NeighborLists, layout: CellLayout, k: Int) throws -> NeighborLists {
        let n = vectors.rows, d = vectors.columns, width = candidates.k
        let result = NeighborLists.emptied(rows: n, k: k, threads: threadCount)
        // With the full vectors in position order (`laid`), a cell's rows and their candidates,
        // mostly in the same and nearby cells, are close in memory. (A permuted copy made in
        // memory only for this step cost more than it saved.)
        let blockRows = 1024
        let blocks = (n + blockRows - 1) / blockRows
        // Angular vectors are unit length or zero (normalised on reading): 1 - cos is half the
        // squared distance, but for a zero vector, whose cosine with anything is taken as 0.
        // Flagging zero rows once spares every pair the two norms `exactScore` would compute
        // (MiniLM 60k, 30 candidates per row: re-scoring 0.13 s to 0.09 s).
        var zero = [Bool]()
        if metric == .angular {
            zero = [Bool](repeating: false, count: n)
            for row in 0..<n where VectorKernels.dot(vectors.row(row), vectors.row(row), count: d) == 0 { zero[row] = true }
        }
        try layout.rows.withUnsafeBufferPointer { rowBuffer in
            try zero.withUnsafeBufferPointer { zeroBuffer in
                let shared = UnsafeSendable((rowBuffer.baseAddress!, metric == .angular ? zeroBuffer.baseAddress : nil))
                try BlockedJoin.run(items: blocks, threads: threadCount, block: 1) { block, _ in
                    let (rowOf, zero) = shared.value
                    for position in (block * blockRows)..<min((block + 1) * blockRows, n) {
                        let row = Int(rowOf[position])
                        let x = laid?.row(position) ?? vectors.row(row)
                        for slot in 0..<width {
                            let candidate = candidates.ids[position * width + slot]
                            guard candidate != NeighborLists.emptyID else { break }
                            let id = rowOf[Int(candidate)]
                            let y = laid?.row(Int(candidate)) ?? vectors.row(Int(id))
                            // The row two candidates ahead, asked for now (re-scoring waits on
                            // memory: Fashion-MNIST 0.12 s to 0.08 s, MiniLM 0.09 s to 0.06 s).
                            if slot + Self.prefetchAhead < width {
                                let ahead = candidates.ids[position * width + slot + Self.prefetchAhead]
                                if ahead != NeighborLists.emptyID {
                                    VectorKernels.prefetch(laid?.row(Int(ahead)) ?? vectors.row(Int(rowOf[Int(ahead)])), bytes: d * 4)
                                }
                            }
                            let score: Float = if let zero {
                                zero[row] || zero[Int(id)] ? 1 : 0.5 * VectorKernels.squaredDistance(x, y, count: d)
                            } else {
                                metric.exactScore(x, y, dimension: d)
                            }
                            result.insert(row: row, score: score, id: id)
                        }
                    }
                }
            }
        }
        return result
    }

    /// The ranking space in int8 or bf16 for a search of `slots` cells per row, when
    /// `rankingProduct` (auto: the calibration's choice, from searches of `rankingMinimumFlops`)
    /// takes a reduced product; nil for sgemm. Rows by position, as the layout holds them.
    func rankEncoding(_ layout: CellLayout, slots: Int) throws -> ReducedRows? {
        let n = layout.vectors.rows, m = layout.vectors.columns
        let flops = 2 * Double(n) * Double(slots) * Double(n / max(layout.cellCount, 1)) * Double(m)
        let format: ReducedGEMM.Format?
        switch rankingProduct {
        case .auto:
            guard flops >= Self.rankingMinimumFlops else { return nil }
            format = try GEMMCalibration.resolve(.auto, dimension: m, flops: max(flops, GEMMCalibration.minimumFlops))
        default:
            format = try GEMMCalibration.resolve(rankingProduct, dimension: m, flops: flops)
        }
        guard let format else { return nil }
        // Room for a block of padding rows past the end (the products' shapes are rounded up).
        let padding = ExactKNNConfig.defaultBlock
        let encoded = ReducedRows.allocate(format: format, rows: n + padding, dimension: m)
        encoded.unsigned?.advanced(by: n * m).initialize(repeating: 0, count: padding * m)
        encoded.signed?.advanced(by: n * m).initialize(repeating: 0, count: padding * m)
        encoded.halves?.advanced(by: n * m).initialize(repeating: 0, count: padding * m)
        let blockRows = 4096
        let shared = UnsafeSendable(encoded)
        try BlockedJoin.run(items: (n + blockRows - 1) / blockRows, threads: threadCount, block: 1) { item, _ in
            shared.value.encode(layout.vectors.pointer, rows: (item * blockRows)..<min((item + 1) * blockRows, n))
        }
        return encoded
    }

    /// Candidates ahead whose rows re-scoring asks the memory for.
    static let prefetchAhead = 2

    /// Searches whose sgemm would take less than this keep it (auto).
    static let rankingMinimumFlops = 1e9

    /// Each row searches the cells at ranks `slots` among its nearest, in the layout's space:
    /// one work item per home cell, which owns its rows' lists. Its rows are grouped by the
    /// cell they probe; each group (gathered, unless it is the whole home cell) meets that
    /// cell's contiguous members in `block x block` sgemm tiles, scanned on the expansion's
    /// scores (`CandidateScan`). Returns the pairs scored.
    ///
    /// With `exact` (the full space), tiles go through the exact engine's scan instead: a
    /// margin for rounding and an exact score for every survivor, so probing every cell gives
    /// exactly the exact graph. A wider search after the first (slots not starting at 0) fills
    /// lists of its own, merged without repeating an id the lists hold already.
    /// `ranks` (a reduced space's `rankEncoding`) ranks with its int8 or bf16 products.
    /// `homes` limits the work to those home cells (a shard's); nil is every cell. `target`
    /// then may hold only their rows' lists, from position `listOffset` on.
    func searchCells(_ layout: CellLayout, metric: Metric, cells: CellPartition, slots: Range<Int>, into target: NeighborLists, exact: Bool,
                     ranks: ReducedRows? = nil,
                     homes: Range<Int>? = nil, listOffset: Int = 0) throws -> Int {
        let slots = slots.clamped(to: 0..<cells.width)
        let widening = !slots.contains(0)
        let lists = exact && widening ? NeighborLists.emptied(rows: target.rows, k: target.k, threads: threadCount) : target
        defer {
            if exact && widening {
                target.merge(lists, rows: 0..<target.rows, skippingHeld: true)
                lists.deallocate()
            }
        }
        let m = layout.vectors.columns, width = cells.width, block = ExactKNNConfig.defaultBlock
        let cellCount = layout.cellCount
        // Ranking products in int8 or bf16 (`ranks`, from `rankEncoding`) where this CPU
        // multiplies them faster; never in the full space, whose search scores exactly.
        let ranks = exact ? nil : ranks
        let rankGathers = ranks.map { ranks in
            (0..<threadCount).map { _ in
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: block * m * 2, alignment: 64)
                buffer.initializeMemory(as: UInt8.self, repeating: 0, count: block * m * 2)
                return buffer
            }
        }
        defer { rankGathers?.forEach { $0.deallocate() } }
        let rankScales = UnsafeMutablePointer<Float>.allocate(capacity: threadCount * block)
        defer { rankScales.deallocate() }
        let order = Array(homes ?? 0..<cellCount).sorted { layout.cell($0).count > layout.cell($1).count }
        let threads = min(threadCount, max(order.count, 1))
        let gathers = (0..<threads).map { _ in FloatMatrix(rows: block, columns: m) }
        let gatherNorms = UnsafeMutablePointer<Float>.allocate(capacity: threads * block)
        defer { gatherNorms.deallocate() }
        let scoredCounts = UnsafeMutablePointer<Int>.allocate(capacity: threads)
        scoredCounts.initialize(repeating: 0, count: threads)
        defer { scoredCounts.deallocate() }
        let n = order.reduce(0) { $0 + layout.cell($1).count }
        let progress = ProgressDisplay("approximate k-NN graph", total: n, unit: "rows", style: progressStyle, logger: logger)
        try layout.norms.withUnsafeBufferPointer { normBuffer in
            try cells.nearest.withUnsafeBufferPointer { nearestBuffer in
                try layout.rows.withUnsafeBufferPointer { rowBuffer in
                    let shared = UnsafeSendable((normBuffer.baseAddress!, nearestBuffer.baseAddress!, rowBuffer.baseAddress!))
                    try BlockedJoin.run(items: order.count, threads: threads, block: block, progress: progress, weight: { layout.cell(order[$0]).count },
                                        format: ranks?.format) { item, worker in
                        let (norms, nearest, rowOf) = shared.value
                        let home = order[item]
                        let range = layout.cell(home)
                        guard !range.isEmpty else { return }
                        // (probed cell, position) of every row of the cell and slot, grouped by cell.
                        var pairs = [UInt64]()
                        pairs.reserveCapacity(range.count * slots.count)
                        for position in range {
                            let row = Int(rowOf[position])
                            // The home cell sorts first: its rows are the nearest, so bounds tighten early.
                            for slot in slots {
                                let cell = Int(nearest[row * width + slot])
                                pairs.append(UInt64(cell == home ? 0 : cell + 1) << 32 | UInt64(position))
                            }
                        }
                        pairs.sort()
                        let gather = gathers[worker.index], gatherNorm = gatherNorms + worker.index * block
                        var ids = [Int32](repeating: 0, count: block)
                        var scored = 0
                        var first = 0
                        while first < pairs.count {
                            let key = pairs[first] >> 32
                            let target = key == 0 ? home : Int(key) - 1
                            var last = first
                            while last < pairs.count && pairs[last] >> 32 == key { last += 1 }
                            let columns = layout.cell(target)
                            // Rows probing `target`, at most `block` at a time.
                            var chunkStart = first
                            while chunkStart < last {
                                let chunkEnd = min(chunkStart + block, last)
                                let count = chunkEnd - chunkStart
                                let firstPosition = Int(pairs[chunkStart] & 0xFFFF_FFFF)
                                let contiguous = Int(pairs[chunkEnd - 1] & 0xFFFF_FFFF) - firstPosition == count - 1
                                let rankGather = rankGathers?[worker.index], rankScale = rankScales + worker.index * block
                                let rankBytes = ranks.map { $0.format == .int8 ? m : 2 * m } ?? 0
                                for index in 0..<count {
                                    let position = Int(pairs[chunkStart + index] & 0xFFFF_FFFF)
                                    ids[index] = Int32(position)
                                    if !contiguous {
                                        if let ranks, let rankGather {
                                            (rankGather + index * rankBytes).copyMemory(from: ranks.aSide(position), byteCount: rankBytes)
                                            rankScale[index] = ranks.scales[position]
                                        } else {
                                            gather.row(index).update(from: layout.vectors.row(position), count: m)
                                        }
                                        gatherNorm[index] = norms[position]
                                    }
                                }
                                let a = contiguous ? UnsafePointer(layout.vectors.row(firstPosition)) : UnsafePointer(gather.pointer)
                                let aNorms = contiguous ? norms + firstPosition : UnsafePointer(gatherNorm)
                                ids.withUnsafeBufferPointer { idBuffer in
                                    for columnStart in stride(from: columns.lowerBound, to: columns.upperBound, by: block) {
                                        let columnCount = min(block, columns.upperBound - columnStart)
                                        if let ranks, let multiplier = worker.multiplier {
                                            // Shapes rounded up (to 64 rows, 128 columns; the encoding and
                                            // gather buffers have room): oneDNN compiles a kernel per
                                            // shape, and exact shapes made hundreds per search.
                                            let paddedRows = min(block, (count + 63) / 64 * 64)
                                            let paddedColumns = min(block, (columnCount + 127) / 128 * 128)
                                            let aSide = contiguous ? ranks.aSide(firstPosition) : UnsafeRawPointer(rankGather!)
                                            multiplier.multiply(m: paddedRows, n: paddedColumns, k: m, a: aSide, lda: m, b: ranks.bSide(columnStart), ldb: m,
                                                                c: worker.scratch, ldc: paddedColumns)
                                            let columnCount = columnCount, ldc = paddedColumns
                                            if ranks.format == .int8 {
                                                CandidateScan.scan(sums: UnsafeRawPointer(worker.scratch).assumingMemoryBound(to: Int32.self), ldc: ldc,
                                                                   dimension: m, rowScales: UnsafePointer(contiguous ? ranks.scales + firstPosition : rankScale),
                                                                   columnScales: ranks.scales + columnStart, columnOffsets: ranks.offsets + columnStart,
                                                                   rowCount: count, columnCount: columnCount, rowIDs: idBuffer.baseAddress!, columnStart: columnStart,
                                                                   rowNorms: aNorms, columnNorms: norms + columnStart, metric: metric, lists: lists,
                                                                   skippingHeld: widening, listOffset: listOffset)
                                            } else {
                                                CandidateScan.scan(dots: worker.scratch, ldc: ldc, rowCount: count, columnCount: columnCount,
                                                                   rowIDs: idBuffer.baseAddress!, columnStart: columnStart,
                                                                   rowNorms: aNorms, columnNorms: norms + columnStart, metric: metric, lists: lists,
                                                                   skippingHeld: widening, listOffset: listOffset)
                                            }
                                            continue
                                        }
                                        BLAS.gemmABt(m: count, n: columnCount, k: m, a: a, lda: m, b: layout.vectors.row(columnStart), ldb: m,
                                                     c: worker.scratch, ldc: columnCount)
                                        if exact {
                                            let tile = TileScan.Tile(dots: worker.scratch, ldc: columnCount, rowStart: 0, rowCount: count,
                                                                     columnStart: columnStart, columnCount: columnCount, rowVectors: a,
                                                                     columnVectors: layout.vectors.row(columnStart), dimension: m,
                                                                     rowNorms: aNorms, columnNorms: norms + columnStart)
                                            TileScan.scanGathered(tile, metric: metric, rowIDs: idBuffer.baseAddress!, columnIDs: nil, lists: lists, listOffset: listOffset)
                                        } else {
                                            CandidateScan.scan(dots: worker.scratch, ldc: columnCount, rowCount: count, columnCount: columnCount,
                                                               rowIDs: idBuffer.baseAddress!, columnStart: columnStart,
                                                               rowNorms: aNorms, columnNorms: norms + columnStart, metric: metric, lists: lists,
                                                               skippingHeld: widening, listOffset: listOffset)
                                        }
                                    }
                                }
                                scored += count * columns.count
                                chunkStart = chunkEnd
                            }
                            first = last
                        }
                        scoredCounts[worker.index] += scored
                    }
                }
            }
        }
        progress.finish()
        return (0..<threads).reduce(0) { $0 + scoredCounts[$1] }
    }
}
