import Foundation
import Testing
@testable import SimjobAlgorithms
@testable import SimjobOperations
import SimjobKernels

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
