import Foundation
import Logging
import SimjobAlgorithms
import SimjobHDF5
import SimjobKernels

/// The shardable steps' work, cut so that merging the shards gives exactly one run's output.
///
/// - Ground truth and the exact k-NN graph are cut by rows of the result: shard i computes the
///   lists of its range of query (or graph) rows against every row of the base. Each list is
///   the one a whole run computes, bit for bit: every listed distance is the exact one from
///   the two vectors and lists order by (distance, id), so the merge is a concatenation. (The
///   one-machine graph computes each pair once for both rows; shards give up that symmetry
///   for independence, about 2x the arithmetic in all.)
/// - Exact dedup is cut by the first row of each pair i < j: shard i joins its rows against
///   every later row, ranges sized so that each holds about the same share of the upper
///   triangle. The merge is one sort and one union-find over all pairs, the same code one run
///   uses, so groups and kept rows do not depend on shard order or count.
/// - Fast dedup is cut by runs of partitions (equal shares of the join's work), the partitions'
///   centroids prepared once; each shard derives the partition plan (homes and guests) from
///   them as a whole run does and joins its partitions; the merge is exact dedup's.
/// - The approximate graph (below) shares out its search by home cells.
/// - IVF-PQ encoding (below) is cut by whole runs of 1,024 rows.
///
/// Shard files hold the raw pieces: `neighbors` int32 and `distances` float32 for the list
/// cuts, `pairs` int32 [p, 2] and `scores` float32 [p] (the exact scores) for dedup.
public enum ShardOperations {
    // MARK: ground truth

    public static func groundTruthShard(
        input: String, shard: (index: Int, count: Int), config: ExactKNNConfig, into file: HDF5File,
        progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> (rows: Range<Int>, stats: ExactKNNStats) {
        let base = try VectorSource(DatasetReference(path: input, dataset: "train"), threads: config.threads)
        let queries = try VectorSource(DatasetReference(path: input, dataset: "test"), threads: config.threads)
        let metric = try base.resolveMetric(config.metric)
        let range = evenRange(queries.rows, shard)
        var engine = ExactKNN(config: config)
        engine.progressStyle = progressStyle
        let (table, stats) = try engine.search(queries: queries, rows: range, base: base, metric: metric)
        try OutputWriting.write(table, to: file, neighbors: "neighbors", distances: "distances")
        try file.setAttribute("metric", .string(metric.rawValue))
        return (range, stats)
    }

    /// The ground-truth output of a whole run, from its shards' files in order.
    public static func groundTruthMerge(input: String, output: String, shards: [String], k: Int, metric explicit: Metric?) throws -> Int {
        let base = try VectorSource(DatasetReference(path: input, dataset: "train"))
        let queries = try VectorSource(DatasetReference(path: input, dataset: "test"))
        let metric = try base.resolveMetric(explicit)
        let out = try AtomicOutputFile(output)
        for (name, value) in try base.file.attributes() where name != "distance" {
            try out.file.setAttribute(name, value)
        }
        try out.file.setAttribute("distance", .string(metric.rawValue))
        for name in base.file.datasetPaths() where name != "neighbors" && name != "distances" {
            try OutputWriting.copyDataset(name, from: base.file, to: out.file)
        }
        try concatenateLists(shards, rows: queries.rows, k: k, to: out.file, neighbors: "neighbors", distances: "distances")
        try out.commit()
        return queries.rows
    }

    // MARK: exact k-NN graph

    public static func knnGraphShard(
        input: DatasetReference, shard: (index: Int, count: Int), config: ExactKNNConfig, into file: HDF5File,
        progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> (rows: Range<Int>, stats: ExactKNNStats) {
        let source = try VectorSource(input, threads: config.threads)
        let metric = try source.resolveMetric(config.metric)
        let range = evenRange(source.rows, shard)
        var engine = ExactKNN(config: config)
        engine.progressStyle = progressStyle
        let (table, stats) = try engine.graphRows(range, of: source, metric: metric)
        try OutputWriting.write(table, to: file, neighbors: "neighbors", distances: "distances")
        try file.setAttribute("metric", .string(metric.rawValue))
        return (range, stats)
    }

    public static func knnGraphMerge(input: DatasetReference, output: String, shards: [String], k: Int, metric explicit: Metric?, settings: String) throws -> Int {
        let source = try VectorSource(input)
        let metric = try source.resolveMetric(explicit)
        let out = try AtomicOutputFile(output)
        try concatenateLists(shards, rows: source.rows, k: k, to: out.file,
                             neighbors: "\(KNNGraphFile.group)/neighbors", distances: "\(KNNGraphFile.group)/distances")
        try KNNGraphFile.writeAttributes(k: k, metric: metric, method: "exact", source: input, to: out.file)
        try Provenance.stamp(out.file, from: input, artifact: "knn_graph", settingsText: settings)
        try out.commit()
        return source.rows
    }

    // MARK: exact dedup

    public static func dedupShard(
        input: DatasetReference, shard: (index: Int, count: Int), config: DedupConfig, into file: HDF5File, prepared: String? = nil,
        spillFolder: String? = nil, logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> (rows: Range<Int>, pairs: Int) {
        let source = try VectorSource(input, threads: config.threads)
        let metric = try source.resolveMetric(config.metric)
        var dedup = Dedup(config: config, logger: logger)
        dedup.progressStyle = progressStyle
        let range: Range<Int>
        let pairs: [(Int32, Int32, Float)]
        switch config.mode {
        case .exact:
            range = Dedup.balancedCuts(rows: source.rows, count: shard.count)[shard.index]
            // Pairs (i, j) with i in the shard's range and j > i: its rows against the rows after them.
            pairs = try dedup.exactShardPairs(source, home: range, metric: metric)
        case .fast:
            // A run of partitions, by the prepared centroids; the range covered is of partitions.
            guard let prepared else { throw SimjobError("dedup: a fast-mode shard needs the shards' prepared partitions") }
            let centroids = try dedupCentroids(prepared, rows: source.rows, dimension: source.dimension)
            let spill = try DedupOperation.spills(source, config: config) ? spillFolder : nil
            let vectors = try source.readMatrix(0..<source.rows, metric: metric, spillingTo: spill)
            (range, pairs) = try dedup.fastShardPairs(vectors, metric: metric, centroids: centroids, shard: shard, spillingTo: spill)
        }
        try file.write("pairs", pairs.flatMap { [$0.0, $0.1] }, shape: [pairs.count, 2])
        try file.write("scores", pairs.map(\.2), shape: [pairs.count])
        try file.setAttribute("metric", .string(metric.rawValue))
        try file.setAttribute("rows", .int(Int64(source.rows)))
        return (range, pairs.count)
    }

    /// Fast dedup's shared work: the partitions' k-means centroids (group `dedup_partitions`).
    public static func dedupPrepare(input: DatasetReference, config: DedupConfig, into file: HDF5File, spillFolder: String, logger: Logger? = nil) throws -> Int {
        let source = try VectorSource(input, threads: config.threads)
        let metric = try source.resolveMetric(config.metric)
        let spill = try DedupOperation.spills(source, config: config) ? spillFolder : nil
        let vectors = try source.readMatrix(0..<source.rows, metric: metric, spillingTo: spill)
        let centroids = try Dedup(config: config, logger: logger).fastCentroids(vectors)
        try file.createGroup(dedupGroup)
        try file.write("\(dedupGroup)/centroids", centroids.array, shape: [centroids.rows, centroids.columns])
        try file.setAttribute("rows", .int(Int64(source.rows)), on: dedupGroup)
        return centroids.rows
    }

    static let dedupGroup = "dedup_partitions"

    static func dedupCentroids(_ path: String, rows: Int, dimension: Int) throws -> FloatMatrix {
        let file = try HDF5File.open(path, registerInput: false)
        guard file.exists(dedupGroup), try file.attribute("rows", of: dedupGroup)?.intValue == Int64(rows) else {
            throw SimjobError("\(path): not the prepared partitions of a dedup of \(rows) rows")
        }
        let dataset = try file.dataset("\(dedupGroup)/centroids")
        try dataset.requireMatrix()
        guard dataset.columns == dimension else { throw SimjobError("\(path): centroids of dimension \(dataset.columns) for vectors of dimension \(dimension)") }
        return FloatMatrix(rows: dataset.rows, columns: dataset.columns, values: try dataset.readAll())
    }

    /// `covered`: the end of the last shard's range, the set's rows (exact mode) or its
    /// partitions (fast mode), checked against the input.
    public static func dedupMerge(
        input: DatasetReference, output: String, shards: [String], covered: Int, config: DedupConfig, writePairs: Bool, writeKept: String?,
        prepared: String? = nil
    ) throws -> DedupResult {
        let started = ProgressDisplay.now()
        let source = try VectorSource(input, threads: config.threads)
        let metric = try source.resolveMetric(config.metric)
        if config.mode == .exact {
            guard covered == source.rows else {
                throw SimjobError("\(input): has \(source.rows) rows but its dedup shards cover \(covered): the input changed since the shards ran")
            }
        }
        let out = try AtomicOutputFile(output)
        let kept = try writeKept.map { try AtomicOutputFile($0) }
        var pairs: [(Int32, Int32, Float)] = []
        for path in shards {
            let file = try HDF5File.open(path, registerInput: false)
            if let rows = try file.attribute("rows")?.intValue, rows != Int64(source.rows) {
                throw SimjobError("\(path): a shard of a set of \(rows) rows; \(input) has \(source.rows): the input changed since the shards ran")
            }
            let flat: [Int32] = try file.dataset("pairs").readAll()
            let scores: [Float] = try file.dataset("scores").readAll()
            guard flat.count == 2 * scores.count else { throw SimjobError("\(path): pairs and scores differ in length") }
            for index in scores.indices {
                let (i, j) = (flat[2 * index], flat[2 * index + 1])
                guard i >= 0, i < j, Int(j) < source.rows else { throw SimjobError("\(path): pair \(index) (\(i), \(j)) is not a pair of rows i < j < \(source.rows)") }
                pairs.append((i, j, scores[index]))
            }
        }
        let dedup = Dedup(config: config)
        let result: DedupResult
        switch config.mode {
        case .exact:
            // Only keep: centroid needs the vectors (to pick each group's row).
            let vectors = config.keep == .centroid ? try source.readMatrix(0..<source.rows, metric: metric) : nil
            var grouped = try dedup.groups(rows: source.rows, pairs: pairs, metric: metric, vectors: vectors, started: started)
            grouped.partitions = 1
            result = grouped
        case .fast:
            guard let prepared else { throw SimjobError("dedup: merging fast-mode shards needs their prepared partitions") }
            let partitions = try dedupCentroids(prepared, rows: source.rows, dimension: source.dimension).rows
            guard covered == partitions else {
                throw SimjobError("the dedup shards cover \(covered) partitions, the prepared partitions are \(partitions)")
            }
            // The pair recall is sampled against the vectors, as a whole run does.
            let spill = try DedupOperation.spills(source, config: config) ? out.output.folder : nil
            let vectors = try source.readMatrix(0..<source.rows, metric: metric, spillingTo: spill)
            var merged = try dedup.fastMerge(vectors, metric: metric, pairs: pairs, partitions: partitions)
            merged.spilledBytes = spill != nil ? vectors.byteCount : 0
            result = merged
        }
        try DedupOperation.write(result, input: input, config: config, metric: metric, writePairs: writePairs, source: source, out: out, kept: kept)
        return result
    }

    // MARK: helpers

    static func evenRange(_ n: Int, _ shard: (index: Int, count: Int)) -> Range<Int> {
        (n * shard.index / shard.count)..<(n * (shard.index + 1) / shard.count)
    }

    /// Copies each shard's `neighbors`/`distances` rows into place in one [rows, k] pair of
    /// datasets, one shard at a time (only one shard's lists in memory).
    static func concatenateLists(_ shards: [String], rows: Int, k: Int, to file: HDF5File, neighbors: String, distances: String) throws {
        let ids = try file.createDataset(neighbors, type: .int32, shape: [rows, k])
        let scores = try file.createDataset(distances, type: .float32, shape: [rows, k])
        var next = 0
        for path in shards {
            try Cancellation.check()
            let shard = try HDF5File.open(path, registerInput: false)
            let shardIDs = try shard.dataset("neighbors"), shardScores = try shard.dataset("distances")
            guard shardIDs.shape.count == 2, shardIDs.shape == shardScores.shape, shardIDs.columns == k else {
                throw SimjobError("\(path): lists of shape \(shardIDs.shape) and \(shardScores.shape), expected [rows, \(k)]")
            }
            let count = shardIDs.rows
            guard next + count <= rows else { throw SimjobError("\(path): the shards hold more than the \(rows) rows of the result") }
            let idBuffer: [Int32] = try shardIDs.readAll()
            let scoreBuffer: [Float] = try shardScores.readAll()
            if count > 0 {
                try idBuffer.withUnsafeBufferPointer { try ids.writeRows(next, count, from: $0.baseAddress!) }
                try scoreBuffer.withUnsafeBufferPointer { try scores.writeRows(next, count, from: $0.baseAddress!) }
            }
            next += count
        }
        guard next == rows else { throw SimjobError("the shards hold \(next) rows of lists, the result has \(rows)") }
    }
}

// MARK: IVF-PQ encoding

extension ShardOperations {
    /// The shards' shared work: the quantizers, trained once and saved as an index holding no
    /// vectors (group `index`).
    public static func trainPrepare(
        input: DatasetReference, config: IVFPQConfig, into file: HDF5File, logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> IVFPQTrainStats {
        let source = try VectorSource(input, threads: config.threads)
        let metric = try source.resolveMetric(config.metric)
        var trained = try IVFPQIndex.trainQuantizers(source, metric: metric, config: config, logger: logger, progressStyle: progressStyle)
        trained.stats.totalSeconds = trained.stats.readSeconds + trained.stats.coarseSeconds + trained.stats.pqSeconds
        try trained.emptyIndex.save(to: file)
        try file.setAttribute("training_seconds", .double(trained.stats.totalSeconds), on: "index")
        try file.setAttribute("training_points", .int(Int64(trained.stats.trainingPoints)), on: "index")
        return trained.stats
    }

    /// Rows of shard `index` of `count` of an encoding: whole runs of `encodeAlignment` rows.
    public static func encodingRange(rows n: Int, shard: (index: Int, count: Int)) -> Range<Int> {
        let step = IVFPQIndex.encodeAlignment
        let blocks = (n + step - 1) / step
        let first = blocks * shard.index / shard.count, last = blocks * (shard.index + 1) / shard.count
        return min(n, first * step)..<min(n, last * step)
    }

    static func trained(_ prepared: String) throws -> IVFPQIndex.Trained {
        let index = try IVFPQIndex.load(from: HDF5File.open(prepared, registerInput: false))
        return IVFPQIndex.Trained(metric: index.metric, coarseCentroids: index.coarseCentroids, pq: index.pq, source: index.source)
    }

    /// Encodes one shard's rows with the prepared quantizers: `cells` int32 [rows] and
    /// `codes` uint8 [rows, m].
    public static func trainShard(
        input: DatasetReference, prepared: String, shard: (index: Int, count: Int), config: IVFPQConfig, into file: HDF5File,
        logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> Range<Int> {
        let source = try VectorSource(input, threads: config.threads)
        let trained = try trained(prepared)
        let range = encodingRange(rows: source.rows, shard: shard)
        let (cells, codes) = try IVFPQIndex.encode(source, rows: range, trained: trained, config: config, logger: logger, progressStyle: progressStyle)
        try file.write("cells", cells, shape: [range.count])
        try file.write("codes", codes, shape: [range.count, config.m])
        return range
    }

    /// The index of a whole run, from the prepared quantizers and the shards' codes in order.
    public static func trainMerge(
        input: DatasetReference, prepared: String, shards: [String], output: String, config: IVFPQConfig, seconds: Double
    ) throws -> IVFPQIndex {
        let source = try VectorSource(input, threads: config.threads)
        let trained = try trained(prepared)
        let out = try AtomicOutputFile(output)
        var cells: [Int32] = [], codes: [UInt8] = []
        cells.reserveCapacity(source.rows)
        codes.reserveCapacity(source.rows * config.m)
        for path in shards {
            let file = try HDF5File.open(path, registerInput: false)
            let shardCells: [Int32] = try file.dataset("cells").readAll()
            let shardCodes: [UInt8] = try file.dataset("codes").readAll()
            guard shardCodes.count == shardCells.count * config.m, shardCells.allSatisfy({ $0 >= 0 && Int($0) < config.nlist }) else {
                throw SimjobError("\(path): cells and codes do not match the index (nlist \(config.nlist), m \(config.m))")
            }
            cells += shardCells
            codes += shardCodes
        }
        guard cells.count == source.rows else {
            throw SimjobError("\(input): has \(source.rows) rows but the encoding shards hold \(cells.count): the input changed since they ran")
        }
        var stats = IVFPQTrainStats()
        let index = IVFPQIndex.assemble(trained, cells: cells, codes: codes, config: config, stats: &stats)
        try index.save(to: out.file)
        try Provenance.stamp(out.file, from: input, artifact: "index", settings: config, threads: config.threads)
        try out.file.setAttribute("build_seconds", .double(seconds), on: "index")
        try out.file.setAttribute("index_size_bytes", .int(Int64(index.sizeInBytes)), on: "index")
        try out.commit()
        return index
    }
}

// MARK: approximate k-NN graph

/// The approximate graph in shards (hand settings; a recall target runs whole):
///
/// - The preparation computes once what every shard shares: the principal components (when
///   candidates are ranked in a reduced space) and the cells' k-means centroids, saved in
///   group `approx_graph` (`basis` float32 [m, d] with attribute `captured`, `centroids` float32
///   [cells, m]).
/// - Shard i searches the rows of a run of home cells (cells in layout order, cut at about
///   n x i / N rows) against the cells they probe, exactly the work items of a whole run's
///   search, and writes their lists by layout position: `rows` int32 [r], `ids` int32 [r, w]
///   (candidates as positions), `scores` float32 [r, w], attributes `first_position`, `scored`.
/// - The merge lays the set out by the same cells, loads the lists in place of the search and
///   runs the join rounds and the exact re-scoring on the whole set, as one run does: the
///   same lists in, the same graph out. The search, the part that grows with nprobe, is what
///   the shards share out; the joins and the re-scoring (a third or less of a run at the
///   defaults) run in the merge, within the memory limit as a whole run does.
extension ShardOperations {
    static let approxGroup = "approx_graph"

    public static func approxGraphPrepare(
        input: DatasetReference, config: ApproxKNNConfig, into file: HDF5File, spillFolder: String, logger: Logger? = nil,
        progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> ApproxKNNGraph.Prepared {
        let source = try VectorSource(input, threads: config.threads)
        let metric = try source.resolveMetric(config.metric)
        // Above the memory limit the vectors are read into a spill file, as the shards read them.
        let spill = try ExactOperations.approxGraphSpills(source, config: config) ? spillFolder : nil
        let vectors = try source.readMatrix(0..<source.rows, metric: metric, spillingTo: spill)
        var graph = ApproxKNNGraph(config: config)
        graph.logger = logger
        graph.progressStyle = progressStyle
        let prepared = try graph.prepare(vectors, metric: metric)
        try file.createGroup(approxGroup)
        try file.write("\(approxGroup)/centroids", prepared.centroids.array, shape: [prepared.centroids.rows, prepared.centroids.columns])
        if let projection = prepared.projection {
            try file.write("\(approxGroup)/basis", projection.basis.array, shape: [projection.basis.rows, projection.basis.columns])
            try file.setAttribute("captured", .double(projection.captured), on: "\(approxGroup)/basis")
        }
        try file.setAttribute("metric", .string(metric.rawValue), on: approxGroup)
        try file.setAttribute("rows", .int(Int64(source.rows)), on: approxGroup)
        return prepared
    }

    /// The prepared projection and centroids, checked against the vectors they serve.
    static func approxPrepared(_ path: String, rows: Int, dimension: Int) throws -> ApproxKNNGraph.Prepared {
        let file = try HDF5File.open(path, registerInput: false)
        func matrix(_ name: String) throws -> FloatMatrix {
            let dataset = try file.dataset("\(approxGroup)/\(name)")
            try dataset.requireMatrix()
            let values: [Float] = try dataset.readAll()
            return FloatMatrix(rows: dataset.rows, columns: dataset.columns, values: values)
        }
        guard file.exists(approxGroup), try file.attribute("rows", of: approxGroup)?.intValue == Int64(rows) else {
            throw SimjobError("\(path): not the prepared cells of an approximate graph of \(rows) rows")
        }
        let centroids = try matrix("centroids")
        var projection: Projection? = nil
        if file.exists("\(approxGroup)/basis") {
            let basis = try matrix("basis")
            guard basis.columns == dimension, basis.rows == centroids.columns,
                  let captured = try file.attribute("captured", of: "\(approxGroup)/basis")?.doubleValue else {
                throw SimjobError("\(path): its projection (\(basis.rows) x \(basis.columns)) does not fit vectors of dimension \(dimension) and its centroids")
            }
            projection = Projection(basis: basis, captured: captured)
        } else if centroids.columns != dimension {
            throw SimjobError("\(path): centroids of dimension \(centroids.columns) for vectors of dimension \(dimension)")
        }
        return ApproxKNNGraph.Prepared(projection: projection, centroids: centroids)
    }

    public static func approxGraphShard(
        input: DatasetReference, prepared path: String, shard: (index: Int, count: Int), config: ApproxKNNConfig, into file: HDF5File,
        spillFolder: String, logger: Logger? = nil, progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> (rows: Range<Int>, searched: ApproxKNNGraph.SearchedShard) {
        let source = try VectorSource(input, threads: config.threads)
        let metric = try source.resolveMetric(config.metric)
        let prepared = try approxPrepared(path, rows: source.rows, dimension: source.dimension)
        let spill = try ExactOperations.approxGraphSpills(source, config: config) ? spillFolder : nil
        let vectors = try source.readMatrix(0..<source.rows, metric: metric, spillingTo: spill)
        var graph = ApproxKNNGraph(config: config)
        graph.logger = logger
        graph.progressStyle = progressStyle
        let searched = try graph.searchShard(vectors, metric: metric, prepared: prepared, shard: shard, reorderingInPlace: true, spillingTo: spill)
        let count = searched.rows.count
        try file.write("rows", searched.rows, shape: [count])
        try file.write("ids", searched.ids, shape: [count, searched.width])
        try file.write("scores", searched.scores, shape: [count, searched.width])
        try file.setAttribute("first_position", .int(Int64(searched.positions.lowerBound)))
        try file.setAttribute("scored", .int(Int64(searched.scored)))
        try file.setAttribute("metric", .string(metric.rawValue))
        return (searched.positions, searched)
    }

    /// The graph of a whole run: the prepared cells, the shards' lists in place of the search,
    /// then the joins and the re-scoring.
    public static func approxGraphMerge(
        input: DatasetReference, prepared path: String, shards: [String], output: String, config: ApproxKNNConfig, logger: Logger? = nil,
        progressStyle: ProgressDisplay.Style = .automatic
    ) throws -> ApproxKNNStats {
        let source = try VectorSource(input)
        let prepared = try approxPrepared(path, rows: source.rows, dimension: source.dimension)
        let searched: (NeighborLists, CellLayout) throws -> Int = { lists, layout in
            var next = 0, scored = 0
            for shardPath in shards {
                try Cancellation.check()
                let file = try HDF5File.open(shardPath, registerInput: false)
                let rows: [Int32] = try file.dataset("rows").readAll()
                let ids = try file.dataset("ids"), scores = try file.dataset("scores")
                guard let first = try file.attribute("first_position")?.intValue, let shardScored = try file.attribute("scored")?.intValue,
                      ids.shape.count == 2, ids.shape == scores.shape, ids.rows == rows.count else {
                    throw SimjobError("\(shardPath): not the lists of an approximate graph shard")
                }
                guard Int(first) == next else {
                    throw SimjobError("\(shardPath): its lists start at position \(first), the shards before it end at \(next)")
                }
                let shard = ApproxKNNGraph.SearchedShard(positions: next..<(next + rows.count), rows: rows, width: ids.columns,
                                                         ids: try ids.readAll(), scores: try scores.readAll(), scored: Int(shardScored))
                try ApproxKNNGraph.load(shard, into: lists, layout: layout, source: shardPath)
                next += rows.count
                scored += shard.scored
            }
            guard next == lists.rows else {
                throw SimjobError("the approximate graph's shards hold the lists of \(next) rows, the set has \(lists.rows): the input changed since they ran")
            }
            return scored
        }
        return try ExactOperations.approxKNNGraph(input: input, output: output, config: config, logger: logger, progressStyle: progressStyle,
                                                  sharded: (prepared, searched))
    }
}
