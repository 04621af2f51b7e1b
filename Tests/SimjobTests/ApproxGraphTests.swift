import Foundation
import Testing
@testable import SimjobAlgorithms
@testable import SimjobOperations
import SimjobKernels

@Suite("Approximate k-NN graph")
struct ApproxGraphTests {
    func approx(k: Int, partitions: Int, nprobe: Int, threads: Int = 2) -> ApproxKNNGraph {
        var config = ApproxKNNConfig(k: k)
        config.partitions = partitions
        config.nprobe = nprobe
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
    }
}
