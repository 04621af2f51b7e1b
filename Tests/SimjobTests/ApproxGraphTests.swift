import Foundation
import Testing
@testable import SimjobAlgorithms
@testable import SimjobOperations
import SimjobKernels
import SimjobBLAS

@Suite("Approximate k-NN graph")
struct ApproxGraphTests {
    func approx(k: Int, partitions: Int, nprobe: Int, rounds: Int = 0, threads: Int = 2) -> ApproxKNNGraph {
        var config = ApproxKNNConfig(k: k)
        config.partitions = partitions
        config.nprobe = nprobe
        config.rounds = rounds
        config.threads = threads
        return ApproxKNNGraph(config: config)
    }

    func exact(_ data: FloatMatrix, k: Int, metric: Metric) throws -> NeighborTable {
        var engine = ExactKNN(config: ExactKNNConfig(k: k, threads: 2))
        engine.progressStyle = .silent
        return try engine.graph(data, metric: metric).0
    }

    @Test("probing every cell gives exactly the exact graph", arguments: Metric.allCases)
    func allCellsIsExact(metric: Metric) throws {
        let data = mixture(clusters: 6, perCluster: 70, dimension: 10, seed: 41)
        let prepared = FloatMatrix(rows: data.rows, columns: 10)
        prepared.pointer.update(from: data.pointer, count: data.rows * 10)
        if metric == .angular { VectorKernels.normalizeRows(prepared.pointer, rows: data.rows, dimension: 10) }
        let (table, stats) = try approx(k: 6, partitions: 9, nprobe: 9).graph(prepared, metric: metric)
        #expect(stats.candidatesPerRow == Double(data.rows))
        let reference = try exact(data, k: 6, metric: metric)
        #expect(table.idArray == reference.idArray)
        for (got, expected) in zip(table.distanceArray, reference.distanceArray) { #expect(abs(got - expected) <= 1e-5 * max(1, abs(expected))) }
        // Refinement after an exact search changes nothing (and offers no id twice).
        let (refined, _) = try approx(k: 6, partitions: 9, nprobe: 9, rounds: 2).graph(prepared, metric: metric)
        #expect(refined.idArray == reference.idArray)
    }

    /// A graph run as a preparation, shards of the search (in any order, at another thread
    /// count) and a merge of them.
    func shardedGraph(_ graph: ApproxKNNGraph, _ data: FloatMatrix, metric: Metric, shards: Int, shardThreads: Int,
                      spillingTo spill: String? = nil) throws -> (NeighborTable, ApproxKNNStats) {
        let prepared = try graph.prepare(copy(data), metric: metric)
        var shardConfig = graph.config
        shardConfig.threads = shardThreads
        let searched = try (0..<shards).reversed().map { index in
            try ApproxKNNGraph(config: shardConfig).searchShard(copy(data), metric: metric, prepared: prepared, shard: (index, shards),
                                                                reorderingInPlace: true, spillingTo: spill)
        }.sorted { $0.positions.lowerBound < $1.positions.lowerBound }
        return try graph.graph(copy(data), metric: metric, reorderingInPlace: true, spillingTo: spill, prepared: prepared) { lists, layout in
            for shard in searched { try ApproxKNNGraph.load(shard, into: lists, layout: layout, source: "shard") }
            return searched.reduce(0) { $0 + $1.scored }
        }
    }

    func copy(_ data: FloatMatrix) -> FloatMatrix {
        let result = FloatMatrix(rows: data.rows, columns: data.columns)
        result.pointer.update(from: data.pointer, count: data.rows * data.columns)
        return result
    }

    @Test("the search in shards (run at another thread count, in memory or spilled) and the joins in the merge give exactly one run's graph",
          arguments: [(Metric.euclidean, 0, false), (.ip, 0, true), (.euclidean, 8, false), (.angular, 8, true)])
    func shardsEqualOneRun(metric: Metric, dimension: Int, spilled: Bool) throws {
        // 200 dimensions: ranked in a reduced space by default; `dimension` 8 keeps the full one
        // below (the data are 24-d then).
        let d = dimension == 0 ? 200 : 24
        let data = mixture(clusters: 14, perCluster: 90, dimension: d, seed: 52)
        if metric == .angular { VectorKernels.normalizeRows(data.pointer, rows: data.rows, dimension: d) }
        var graph = approx(k: 7, partitions: 11, nprobe: 3, rounds: 2, threads: 2)
        var config = graph.config
        config.dimension = dimension == 0 ? 0 : d
        graph = ApproxKNNGraph(config: config)
        let folder = TemporaryFolder()
        let spill = spilled ? folder.path : nil
        let (whole, wholeStats) = try graph.graph(copy(data), metric: metric, reorderingInPlace: true, spillingTo: spill)
        for shards in [1, 4, 13] {
            let (sharded, stats) = try shardedGraph(graph, data, metric: metric, shards: shards, shardThreads: 1, spillingTo: spill)
            #expect(sharded.idArray == whole.idArray, "\(shards) shards")
            #expect(sharded.distanceArray == whole.distanceArray, "\(shards) shards")
            #expect(stats.candidatesPerRow == wholeStats.candidatesPerRow && stats.rounds == wholeStats.rounds)
        }
        #expect((dimension == 0) == (wholeStats.dimension < d), "reduced: \(wholeStats.dimension) of \(d)")
        // The shared work itself is the same at any thread count (the shards' hosts may differ).
        var single = graph.config
        single.threads = 1
        let one = try ApproxKNNGraph(config: single).prepare(copy(data), metric: metric), two = try graph.prepare(copy(data), metric: metric)
        let sameCentroids = one.centroids.array == two.centroids.array, sameBasis = one.projection?.basis.array == two.projection?.basis.array
        #expect(sameCentroids && sameBasis, "prepared at 1 and 2 threads: centroids equal \(sameCentroids), bases equal \(sameBasis)")
    }

    @Test("a shard searched with other cells, or of another width, is refused by name")
    func foreignShardRefused() throws {
        let data = mixture(clusters: 8, perCluster: 60, dimension: 12, seed: 53)
        let graph = approx(k: 5, partitions: 6, nprobe: 2, rounds: 1)
        let prepared = try graph.prepare(copy(data), metric: .euclidean)
        let other = try approx(k: 5, partitions: 6, nprobe: 2, rounds: 1).prepare(copy(mixture(clusters: 8, perCluster: 60, dimension: 12, seed: 54)), metric: .euclidean)
        let foreign = try graph.searchShard(copy(data), metric: .euclidean, prepared: other, shard: (0, 2))
        #expect(throws: SimjobError.self) {
            _ = try graph.graph(copy(data), metric: .euclidean, prepared: prepared) { lists, layout in
                try ApproxKNNGraph.load(foreign, into: lists, layout: layout, source: "shard-0000-of-0002.hdf5")
                return 0
            }
        }
        let wider = try approx(k: 6, partitions: 6, nprobe: 2, rounds: 1).searchShard(copy(data), metric: .euclidean, prepared: prepared, shard: (0, 1))
        do {
            _ = try graph.graph(copy(data), metric: .euclidean, prepared: prepared) { lists, layout in
                try ApproxKNNGraph.load(wider, into: lists, layout: layout, source: "shard-0000-of-0001.hdf5")
                return 0
            }
            Issue.record("a shard of another list width was accepted")
        } catch let error as SimjobError {
            #expect(error.description.contains("shard-0000-of-0001.hdf5") && error.description.contains("do not fit"), "\(error)")
        }
        // A recall target decides its search from the whole set's lists: no shards.
        var target = graph.config
        target.recall = 0.9
        #expect(!ApproxKNNGraph(config: target).isShardable)
        #expect(throws: SimjobError.self) { _ = try ApproxKNNGraph(config: target).searchShard(copy(data), metric: .euclidean, prepared: prepared, shard: (0, 1)) }
    }

    @Test("the recall sample's exact neighbours are the same through int8 and bf16 products; small samples stay in fp32",
          arguments: Metric.allCases)
    func sampleThroughReducedProducts(metric: Metric) throws {
        let data = mixture(clusters: 12, perCluster: 150, dimension: 96, seed: 55)
        // Near ties and exact duplicates, where an unbounded reduced product would swap neighbours.
        for row in stride(from: 0, to: 200, by: 2) { data.row(row + 1).update(from: data.row(row), count: 96) }
        for column in 0..<96 { data.row(300)[column] = data.row(301)[column] * (1 + 1e-6) }
        if metric == .angular { VectorKernels.normalizeRows(data.pointer, rows: data.rows, dimension: 96) }
        let fp32 = try SampledRecall(data, metric: metric, k: 8, size: 400, seed: 3, threads: 2, gemm: .fp32)
        var formats: [GEMMChoice] = [.int8]
        if ReducedGEMM(format: .bf16) != nil { formats.append(.bf16) }
        for gemm in formats {
            let reduced = try SampledRecall(data, metric: metric, k: 8, size: 400, seed: 3, threads: 2, gemm: gemm)
            #expect(reduced.rows == fp32.rows && reduced.truth == fp32.truth && reduced.kthScore == fp32.kthScore, "\(gemm)")
        }
        #expect(try SampledRecall.product(rows: 100, base: 1000, dimension: 96) == .fp32)
    }

    /// Recall of `table` against the exact graph, by ids.
    func recall(_ table: NeighborTable, _ reference: NeighborTable, rows: Int, k: Int) -> Double {
        var hits = 0
        for row in 0..<rows { hits += Set(table.ids(ofRow: row)).intersection(reference.ids(ofRow: row)).count }
        return Double(hits) / Double(rows * k)
    }

    /// With one cell per row every list stays inside its cell (so do its neighbours'), and a
    /// round can add nothing; from two cells on, lists cross cells and rounds follow them.
    @Test("refinement rounds raise the recall of a two-cell search and never list self or an id twice")
    func refinementRaisesRecall() throws {
        let data = mixture(clusters: 30, perCluster: 60, dimension: 16, seed: 44)
        let reference = try exact(data, k: 10, metric: .euclidean)
        let (plain, _) = try approx(k: 10, partitions: 60, nprobe: 2).graph(data, metric: .euclidean)
        let (refined, stats) = try approx(k: 10, partitions: 60, nprobe: 2, rounds: 2).graph(data, metric: .euclidean)
        let before = recall(plain, reference, rows: data.rows, k: 10), after = recall(refined, reference, rows: data.rows, k: 10)
        #expect(after > before + 0.005, "recall \(before) -> \(after)")
        #expect(stats.rounds == 2)
        for row in 0..<data.rows {
            let ids = refined.ids(ofRow: row)
            #expect(Set(ids).count == ids.count && !ids.contains(Int32(row)), "row \(row): \(ids)")
        }
    }

    @Test("a recall target is met on the whole graph, and the sampled recall reported is close to the true one", arguments: [0.9, 0.97])
    func recallTarget(target: Double) throws {
        let data = mixture(clusters: 40, perCluster: 80, dimension: 24, seed: 45)
        var config = ApproxKNNConfig(k: 10)
        config.recall = target
        config.partitions = 40
        config.recallSample = 400
        config.threads = 2
        let (table, stats) = try ApproxKNNGraph(config: config).graph(data, metric: .euclidean)
        let reference = try exact(data, k: 10, metric: .euclidean)
        let whole = recall(table, reference, rows: data.rows, k: 10)
        let sampled = try #require(stats.sampledRecall)
        #expect(sampled.low >= target, "sampled \(sampled)")
        #expect(whole >= target - 0.01, "whole-graph recall \(whole) for target \(target)")
        #expect(abs(sampled.recall - whole) <= 0.02, "sampled \(sampled.recall), whole \(whole)")
        #expect(sampled.low <= sampled.recall && sampled.recall <= sampled.high && sampled.rows == 400)
    }

    /// Gaussian noise has no clusters: two of 60 cells hold few of a row's neighbours, and join
    /// rounds would level off below the target. The first search widens before any join.
    @Test("a recall target widens a search that leaves recall far below it before any join round")
    func recallTargetWidensFirstSearch() throws {
        var rng = SeededGenerator(seed: 47)
        let data = FloatMatrix(rows: 3000, columns: 16)
        rng.fillGaussian(data.pointer, count: data.rows * data.columns)
        let (table, stats) = try graphAtTarget(data, partitions: 60)
        let first = try #require(stats.firstSearch)
        #expect(first.nprobe > 2, "first search \(first)")
        #expect(first.recall >= 0.95 - ApproxKNNGraph.searchWidensBelow, "first search \(first)")
        try expectTargetMet(table, stats, data)
    }

    /// Pairs of a join round grow as the square of its sets: a search that came close to the
    /// target is finished by sets of k, one that did not keeps 2 x k (3 x k far below).
    @Test("a recall target sizes its first join sets by the gap the search left, and sets of k close a small gap")
    func recallTargetSizesJoins() throws {
        let size = { (recall: Double) in ApproxKNNGraph.joinSize(afterSearch: recall, target: 0.95, narrow: 10, usual: 20, wider: 30) }
        #expect([0.99, 0.95, 0.9, 0.86, 0.85].map(size) == [10, 10, 10, 10, 10])
        #expect([0.849, 0.8, 0.75].map(size) == [20, 20, 20])
        #expect([0.749, 0.5, 0].map(size) == [30, 30, 30])
        // Clusters in 16 latent dimensions seen in 256 (ranked in fewer, 30 candidates per
        // row): two of many small cells alone come close, and rounds of k-sized sets reach the
        // target.
        let latent = mixture(clusters: 40, perCluster: 80, dimension: 16, seed: 49)
        var rng = SeededGenerator(seed: 50)
        let map = FloatMatrix(rows: 16, columns: 256)
        rng.fillGaussian(map.pointer, count: 16 * 256)
        let data = FloatMatrix(rows: latent.rows, columns: 256)
        rng.fillGaussian(data.pointer, count: data.rows * 256)
        for row in 0..<data.rows {
            for j in 0..<256 {
                var value = 0.01 * data.row(row)[j]
                for l in 0..<16 { value += latent.row(row)[l] * map.row(l)[j] }
                data.row(row)[j] = value
            }
        }
        let (table, stats) = try graphAtTarget(data, partitions: 100)
        let first = try #require(stats.firstSearch)
        #expect(stats.candidates == 30 && first.nprobe == 2, "\(stats.candidates) candidates, first search \(first)")
        #expect(first.recall >= 0.95 - ApproxKNNGraph.narrowJoinWithin && first.recall < 0.95, "first search \(first)")
        #expect(stats.firstJoinSize == 10)
        try expectTargetMet(table, stats, data)
    }

    /// Clusters of isotropic noise in 256 dimensions: the leading components hold the clusters'
    /// spread (most of the variance) but not the directions neighbours differ in, so no search
    /// width or join round reaches the target in the reduced space.
    @Test("a recall target the reduced space cannot reach is met by building the graph again in the full space")
    func recallTargetFallsBackToFullSpace() throws {
        let data = mixture(clusters: 40, perCluster: 80, dimension: 256, seed: 49)
        let (table, stats) = try graphAtTarget(data, partitions: 60)
        let attempt = try #require(stats.reducedAttempt)
        #expect(attempt.dimension < 256 && attempt.recall < 0.95, "reduced attempt \(attempt)")
        #expect(stats.dimension == 256)
        try expectTargetMet(table, stats, data)
        // Hand settings are the user's: no second build.
        var hand = ApproxKNNConfig(k: 10)
        hand.partitions = 60
        hand.threads = 2
        #expect(try ApproxKNNGraph(config: hand).graph(data, metric: .euclidean).1.reducedAttempt == nil)
    }

    /// The graph of `data` at a recall target of 0.95 (k = 10, 400 sampled rows, 2 threads).
    func graphAtTarget(_ data: FloatMatrix, partitions: Int) throws -> (NeighborTable, ApproxKNNStats) {
        var config = ApproxKNNConfig(k: 10)
        config.recall = 0.95
        config.partitions = partitions
        config.recallSample = 400
        config.threads = 2
        return try ApproxKNNGraph(config: config).graph(data, metric: .euclidean)
    }

    /// The target of `graphAtTarget` is met on the sample (its interval above 0.95) and on the
    /// whole graph within 0.01.
    func expectTargetMet(_ table: NeighborTable, _ stats: ApproxKNNStats, _ data: FloatMatrix,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
        let sampled = try #require(stats.sampledRecall, sourceLocation: sourceLocation)
        #expect(sampled.low >= 0.95, "sampled \(sampled)", sourceLocation: sourceLocation)
        let whole = recall(table, try exact(data, k: 10, metric: .euclidean), rows: data.rows, k: 10)
        #expect(whole >= 0.94, "whole-graph recall \(whole)", sourceLocation: sourceLocation)
    }

    @Test("the sampled recall of the exact graph is 1, and of empty lists 0")
    func sampledRecallBounds() throws {
        let data = mixture(clusters: 5, perCluster: 50, dimension: 8, seed: 46)
        let sample = try SampledRecall(data, metric: .euclidean, k: 5, size: 60, seed: 3, threads: 2)
        var engine = ExactKNN(config: ExactKNNConfig(k: 5, threads: 2))
        engine.progressStyle = .silent
        let lists = NeighborLists(rows: data.rows, k: 5)
        defer { lists.deallocate() }
        #expect(sample.measure(lists).recall == 0)
        let table = try engine.graph(data, metric: .euclidean).0
        for row in 0..<data.rows {
            for slot in 0..<5 {
                let id = table.ids(ofRow: row)[slot]
                lists.insert(row: row, score: VectorKernels.squaredDistance(data.row(row), data.row(Int(id)), count: 8), id: id)
            }
        }
        let measured = sample.measure(lists)
        #expect(measured.recall == 1 && measured.low == 1 && measured.rows == 60)
    }

    @Test("a few cells per row find nearly every neighbour, the same at any thread count")
    func recallWithFewCells() throws {
        let data = mixture(clusters: 20, perCluster: 100, dimension: 12, seed: 42)
        let (one, stats) = try approx(k: 10, partitions: 40, nprobe: 4, threads: 1).graph(data, metric: .euclidean)
        let (two, _) = try approx(k: 10, partitions: 40, nprobe: 4, threads: 2).graph(data, metric: .euclidean)
        #expect(one.idArray == two.idArray)
        #expect(stats.candidatesPerRow < Double(data.rows) / 4, "\(stats.candidatesPerRow) candidates per row")
        let reference = try exact(data, k: 10, metric: .euclidean)
        var hits = 0
        for row in 0..<data.rows {
            #expect(!one.ids(ofRow: row).contains(Int32(row)))
            hits += Set(one.ids(ofRow: row)).intersection(reference.ids(ofRow: row)).count
        }
        let recall = Double(hits) / Double(data.rows * 10)
        #expect(recall > 0.95, "recall \(recall)")
    }

    @Test("knn-graph --method approx writes the graph layout and evaluates against the exact one")
    func command() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), exactGraph = folder.file("exact.hdf5"), approxGraph = folder.file("approx.hdf5")
        #expect(try simjob("generate", data, "--n", "3000", "--queries", "1", "--dim", "16", "--latent-dim", "4", "--k", "0", "--quiet").status == 0)
        #expect(try simjob("knn-graph", data, "--k", "8", "--output", exactGraph, "--quiet").status == 0)
        let result = try simjob("knn-graph", data, "--k", "8", "--method", "approx", "--partitions", "12", "--nprobe", "4", "--output", approxGraph, "--quiet")
        #expect(result.status == 0, "\(result.stderr)")
        let evaluation = try simjob("evaluate", "--graph", approxGraph, "--truth", exactGraph)
        let recall = evaluation.stdout.split(separator: " ").firstIndex(of: "recall").map { Double(evaluation.stdout.split(separator: " ")[$0 + 1].trimmingCharacters(in: .punctuationCharacters)) ?? 0 } ?? 0
        #expect(recall > 0.9, "\(evaluation.stdout)")
        let attributes = try python("""
            import sys, h5py
            g = h5py.File(sys.argv[1], "r")["knn_graph"]
            print(g.attrs["method"], int(g.attrs["nprobe"]), int(g.attrs["partitions"]), g["neighbors"].shape, g["neighbors"].dtype)
            """, approxGraph)
        #expect(attributes == "approx 4 12 (3000, 8) int32")

        let targeted = try simjob("knn-graph", data, "--k", "8", "--method", "approx", "--recall", "0.95", "--output", approxGraph, "--quiet")
        #expect(targeted.status == 0, "\(targeted.stderr)")
        #expect(targeted.stdout.contains("sampled recall") && targeted.stdout.contains("(target 0.95)"), "\(targeted.stdout)")
        let measured = try python("""
            import sys, h5py
            g = h5py.File(sys.argv[1], "r")["knn_graph"]
            print(g.attrs["sampled_recall_low"] >= 0.95, g.attrs["sampled_recall"] <= g.attrs["sampled_recall_high"], int(g.attrs["recall_sample"]), g.attrs["recall_target"])
            """, approxGraph)
        #expect(measured == "True True 500 0.95")
        let both = try simjob("knn-graph", data, "--k", "8", "--method", "approx", "--recall", "0.95", "--nprobe", "4", "--output", approxGraph)
        #expect(both.status == 64 && both.stderr.contains("--nprobe and --recall exclude each other"), "\(both.stderr)")
        let outOfRange = try simjob("knn-graph", data, "--k", "8", "--method", "approx", "--recall", "1.5", "--output", approxGraph)
        #expect(outOfRange.status == 64 && outOfRange.stderr.contains("--recall must be between 0.01 and 1"), "\(outOfRange.stderr)")
    }
}
