import Foundation
import Testing
@testable import SimjobAlgorithms
@testable import SimjobOperations
@testable import SimjobJobs
import SimjobKernels

/// Properties swept over many seeds; Swift Testing names the failing seed (the test's argument).
/// Each seed also draws the shape: rows, dimension, k, block, threads and metric.
@Suite("Properties over many seeds")
struct PropertyTests {
    struct Shape: CustomStringConvertible {
        var rows: Int, dimension: Int, k: Int, block: Int, threads: Int, metric: Metric, symmetric: Bool
        var description: String { "\(rows)x\(dimension) k=\(k) block=\(block) threads=\(threads) \(metric) symmetric=\(symmetric)" }
    }

    static func shape(seed: UInt64) -> Shape {
        var rng = SeededGenerator(seed: seed, stream: 99)
        let rows = 20 + Int(rng.next() % 180)
        // k = 1 has its own scan path: a third of the seeds use it.
        let k = rng.next() % 3 == 0 ? 1 : 1 + Int(rng.next() % UInt64(min(rows - 1, 15)))
        return Shape(rows: rows, dimension: 1 + Int(rng.next() % 33), k: k,
                     block: [16, 32, 64][Int(rng.next() % 3)], threads: 1 + Int(rng.next() % 3),
                     metric: Metric.allCases[Int(rng.next() % UInt64(Metric.allCases.count))], symmetric: rng.next() % 2 == 0)
    }

    @Test("the exact graph equals a Double brute force", arguments: UInt64(1)...24)
    func exactGraph(seed: UInt64) throws {
        let shape = Self.shape(seed: seed)
        let data = gaussianMatrix(rows: shape.rows, dimension: shape.dimension, seed: seed)
        var config = ExactKNNConfig(k: shape.k, threads: shape.threads)
        config.block = shape.block
        config.symmetric = shape.symmetric
        var engine = ExactKNN(config: config)
        engine.progressStyle = .silent
        let (table, _) = try engine.graph(data, metric: shape.metric)
        let reference = bruteForce(queries: data, base: data, k: shape.k, metric: shape.metric, excludeSelf: true)
        expectMatches(table, reference, tolerance: 5e-5 * Double(max(shape.dimension, 1)))
    }

    @Test("the approximate graph probing every cell equals the exact graph, k = 1 included", arguments: UInt64(1)...12)
    func approximateGraphProbingEverything(seed: UInt64) throws {
        var shape = Self.shape(seed: seed)
        if seed % 2 == 0 { shape.k = 1 }
        let data = gaussianMatrix(rows: shape.rows, dimension: shape.dimension, seed: seed)
        var config = ApproxKNNConfig(k: shape.k)
        config.partitions = 1 + Int(seed % 4)
        config.nprobe = config.partitions
        config.threads = shape.threads
        var graph = ApproxKNNGraph(config: config)
        graph.progressStyle = .silent
        // The approximate graph takes vectors prepared for the metric (normalised for angular).
        let prepared = FloatMatrix(rows: data.rows, columns: data.columns, values: data.array)
        if shape.metric.normalizesVectors { VectorKernels.normalizeRows(prepared.pointer, rows: prepared.rows, dimension: prepared.columns) }
        let (table, _) = try graph.graph(prepared, metric: shape.metric)
        let reference = bruteForce(queries: data, base: data, k: shape.k, metric: shape.metric, excludeSelf: true)
        expectMatches(table, reference, tolerance: 5e-5 * Double(max(shape.dimension, 1)))
    }

    @Test("dedup's exact join finds exactly the pairs a brute force finds", arguments: UInt64(1)...12)
    func dedupPairs(seed: UInt64) throws {
        let shape = Self.shape(seed: seed)
        let metric: Metric = shape.metric == .ip ? .euclidean : shape.metric
        let data = gaussianMatrix(rows: shape.rows, dimension: shape.dimension, seed: seed)
        // A threshold that catches a few percent of pairs: the 3rd-nearest distance of row 0.
        let reference = bruteForce(queries: data, base: data, k: shape.rows - 1, metric: metric, excludeSelf: true)
        let threshold = reference[0][min(2, shape.rows - 2)].distance
        var config = DedupConfig()
        config.thresholds = [threshold]
        config.threads = shape.threads
        var dedup = Dedup(config: config, logger: nil)
        dedup.progressStyle = .silent
        let prepared = FloatMatrix(rows: data.rows, columns: data.columns, values: data.array)
        if metric.normalizesVectors { VectorKernels.normalizeRows(prepared.pointer, rows: prepared.rows, dimension: prepared.columns) }
        let result = try dedup.run(prepared, metric: metric)
        var expected = Set<[Int]>()
        var borderline = Set<[Int]>()
        for (i, row) in reference.enumerated() {
            for neighbour in row where neighbour.id > i {
                if neighbour.distance <= threshold - 1e-5 { expected.insert([i, neighbour.id]) }
                if abs(neighbour.distance - threshold) <= 1e-5 { borderline.insert([i, neighbour.id]) }
            }
        }
        let found = Set(result.pairs.map { [Int($0.0), Int($0.1)] })
        #expect(expected.isSubset(of: found), "missing pairs: \(expected.subtracting(found).prefix(5))")
        #expect(found.subtracting(expected).isSubset(of: borderline), "extra pairs: \(found.subtracting(expected).subtracting(borderline).prefix(5))")
    }

    @Test("bounded top-k lists equal a full sort, whatever the insertion order", arguments: UInt64(1)...40)
    func topKLists(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let k = 1 + Int(rng.next() % 12), count = Int(rng.next() % 60)
        // Scores from a small set: many exact ties, which must break by the smaller id.
        let candidates = (0..<count).map { (score: Float(rng.next() % 7), id: Int32($0)) }.shuffled(using: &rng)
        let lists = NeighborLists(rows: 1, k: k)
        defer { lists.deallocate() }
        for candidate in candidates { lists.insert(row: 0, score: candidate.score, id: candidate.id) }
        let expected = candidates.sorted { ($0.score, $0.id) < ($1.score, $1.id) }.prefix(k)
        #expect(lists.count(row: 0) == expected.count)
        for (slot, entry) in expected.enumerated() {
            #expect(lists.ids[slot] == entry.id && lists.scores[slot] == entry.score, "slot \(slot)")
        }
        #expect(lists.bounds[0] == (expected.count == k ? expected.last!.score : .infinity))
    }

    @Test("the row check finds the first row with NaN, infinity or an overflowing squared norm", arguments: UInt64(1)...20)
    func unusableRows(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let rows = 1 + Int(rng.next() % 50), dimension = 1 + Int(rng.next() % 40)
        let matrix = gaussianMatrix(rows: rows, dimension: dimension, seed: seed)
        let bad = Int(rng.next() % UInt64(rows + 1))  // == rows: none
        if bad < rows {
            let poison: [Float] = [.nan, .infinity, -.infinity, 2e19, 1e30]
            matrix.row(bad)[Int(rng.next() % UInt64(dimension))] = poison[Int(rng.next() % 5)]
        }
        let found = VectorKernels.firstNonFiniteRow(matrix.pointer, rows: rows, dimension: dimension)
        #expect(found == (bad < rows ? bad : nil))
    }

    @Test("the planner, in process: a job's steps, outputs and fingerprints; one changed option changes that step's and later ones'")
    func planner() throws {
        let text = """
            output: out/p
            steps:
              - name: data
                generate: {n: 300, queries: 5, dim: 8, k: 5}
              - name: graph
                knn_graph: {input: data, k: 4}
              - name: d
                dedup: {input: data, threshold: 0.1, write_kept: true}
            """
        let plan = try JobPlanner.plan(JobDocument(path: "p.yaml", text: text))
        #expect(plan.steps.map(\.name) == ["data", "graph", "d"])
        #expect(plan.steps.map(\.kind) == [.generate, .knnGraph, .dedup])
        #expect(plan.steps[2].outputs == ["out/p/d.hdf5", "out/p/d-kept.hdf5"])
        let again = try JobPlanner.plan(JobDocument(path: "p.yaml", text: text))
        #expect(again.steps.map(\.fingerprint) == plan.steps.map(\.fingerprint), "fingerprints are not stable")
        let changed = try JobPlanner.plan(JobDocument(path: "p.yaml", text: text.replacingOccurrences(of: "k: 4", with: "k: 3")))
        #expect(changed.steps[0].fingerprint == plan.steps[0].fingerprint)
        #expect(changed.steps[1].fingerprint != plan.steps[1].fingerprint, "the changed step keeps its fingerprint")
        #expect(changed.steps[2].fingerprint == plan.steps[2].fingerprint, "a step that does not read the changed one changed")
        let newData = try JobPlanner.plan(JobDocument(path: "p.yaml", text: text.replacingOccurrences(of: "dim: 8", with: "dim: 9")))
        #expect(newData.steps.indices.allSatisfy { newData.steps[$0].fingerprint != plan.steps[$0].fingerprint }, "readers of a changed step kept their fingerprints")
        #expect(throws: JobValidationError.self) {
            try JobPlanner.plan(JobDocument(path: "p.yaml", text: text.replacingOccurrences(of: "k: 4", with: "k: 300")))
        }
    }
}
