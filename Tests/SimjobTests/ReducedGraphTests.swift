import Foundation
import Testing
@testable import SimjobAlgorithms
@testable import SimjobOperations
import SimjobKernels
import SimjobBLAS

/// Seeded data whose variance decays along the axes (scale 1 / (1 + j / 8) on axis j), as a
/// mixture of `clusters` centres: principal components exist and are known (the axes).
func decayingMixture(rows: Int, dimension: Int, clusters: Int, seed: UInt64) -> FloatMatrix {
    var rng = SeededGenerator(seed: seed)
    let centres = FloatMatrix(rows: clusters, columns: dimension)
    rng.fillGaussian(centres.pointer, count: clusters * dimension)
    let data = FloatMatrix(rows: rows, columns: dimension)
    rng.fillGaussian(data.pointer, count: rows * dimension)
    for row in 0..<rows {
        let centre = centres.row(row % clusters)
        for j in 0..<dimension {
            let scale = 1 / (1 + Float(j) / 8)
            data.row(row)[j] = scale * (2 * centre[j] + data.row(row)[j])
        }
    }
    return data
}

@Suite("Approximate graph in a reduced space")
struct ReducedGraphTests {
    @Test("principal components: orthonormal, largest first, along the axes of decaying variance", arguments: [true, false])
    func projection(centered: Bool) throws {
        let data = decayingMixture(rows: 3000, dimension: 40, clusters: 1, seed: 61)
        if !centered {
            // The second moment sees the mean as a direction of its own: take it out, so that
            // both estimates have the same answer.
            for j in 0..<40 {
                let mean = (0..<3000).reduce(Float(0)) { $0 + data.row($1)[j] } / 3000
                for row in 0..<3000 { data.row(row)[j] -= mean }
            }
        }
        var config = Projection.Config()
        config.dimension = 8
        config.centered = centered
        config.threads = 2
        let projection = try Projection(data, config: config)
        #expect(projection.outputDimension == 8 && projection.inputDimension == 40)
        let basis = projection.basis
        for a in 0..<8 {
            for b in 0..<8 {
                let dot = VectorKernels.dot(basis.row(a), basis.row(b), count: 40)
                #expect(abs(dot - (a == b ? 1 : 0)) <= 1e-4, "basis rows \(a), \(b): \(dot)")
            }
        }
        // Axis 0 has the largest variance (scale 1 against 0.89 for axis 1): the first direction.
        #expect(abs(basis.row(0)[0]) > 0.9, "first direction \(Array(UnsafeBufferPointer(start: basis.row(0), count: 4)))")
        // Variance held: sum of the eight largest scales squared over all, about 0.40 here.
        let scales = (0..<40).map { pow(1 / (1 + Double($0) / 8), 2) }
        let expected = scales.prefix(8).reduce(0, +) / scales.reduce(0, +)
        #expect(abs(projection.captured - expected) <= 0.05, "captured \(projection.captured), expected about \(expected)")
        let reduced = try projection.apply(data, threads: 2)
        #expect(reduced.rows == 3000 && reduced.columns == 8)
        let x = data.row(17), y = reduced.row(17)
        for c in 0..<8 {
            #expect(abs(y[c] - VectorKernels.dot(x, basis.row(c), count: 40)) <= 1e-4 * max(1, abs(y[c])))
        }
    }

    @Test("a dimension whose components hold too little of the variance widens to the smallest multiple of 16 that holds it, at most widenTo",
          arguments: [(0.5, 8), (0.7, 16), (0.93, 48), (0.99, 48)])
    func widenedProjection(variance: Double, expected: Int) throws {
        // Variance of axis j falls as 1 / (1 + j/8)^2 over 64 axes: the leading 8, 16, 32 and 48
        // hold 0.58, 0.76, 0.91 and 0.97 of it.
        let data = decayingMixture(rows: 3000, dimension: 64, clusters: 1, seed: 65)
        var config = Projection.Config()
        config.dimension = 8
        config.widenTo = 48
        config.variance = variance
        config.threads = 2
        let projection = try Projection(data, config: config)
        #expect(projection.outputDimension == expected, "variance \(variance): \(projection.outputDimension) dimensions, captured \(projection.captured)")
        let scales = (0..<64).map { pow(1 / (1 + Double($0) / 8), 2) }
        #expect(abs(projection.captured - scales.prefix(expected).reduce(0, +) / scales.reduce(0, +)) <= 0.03)
        let basis = projection.basis
        for a in [0, expected / 2, expected - 1] {
            for b in [0, expected - 1] {
                let dot = VectorKernels.dot(basis.row(a), basis.row(b), count: 64)
                #expect(abs(dot - (a == b ? 1 : 0)) <= 1e-4, "basis rows \(a), \(b): \(dot)")
            }
        }
    }

    @Test("the automatic reduced dimension widens to half the input's, at most 256; a dimension given never widens")
    func widestDimension() {
        var config = ApproxKNNConfig(k: 10)
        #expect(ApproxKNNGraph.reducedDimension(input: 384, config: config) == 128)
        #expect(ApproxKNNGraph.widestReducedDimension(input: 384, config: config) == 192)
        #expect(ApproxKNNGraph.widestReducedDimension(input: 784, config: config) == 256)
        #expect(ApproxKNNGraph.widestReducedDimension(input: 128, config: config) == nil)
        config.dimension = 64
        #expect(ApproxKNNGraph.widestReducedDimension(input: 384, config: config) == nil)
        // The memory plan counts the widest reduced copy.
        let planned = ApproxKNNGraph.memoryPlan(rows: 1000, dimension: 384, config: ApproxKNNConfig(k: 10)).state
        config.dimension = 128
        #expect(planned > ApproxKNNGraph.memoryPlan(rows: 1000, dimension: 384, config: config).state)
    }

    @Test("the candidate scan keeps each row's best by the expansion's scores, skipping self and held ids")
    func candidateScan() {
        var rng = SeededGenerator(seed: 62)
        let rows = 5, columns = 75, width = 12
        let dots = UnsafeMutablePointer<Float>.allocate(capacity: rows * columns)
        defer { dots.deallocate() }
        rng.fillGaussian(dots, count: rows * columns)
        let rowNorms = [Float](repeating: 1, count: rows), columnNorms = (0..<columns).map { Float($0 % 7) * 0.01 + 1 }
        let lists = NeighborLists(rows: 100, k: width)
        defer { lists.deallocate() }
        let rowIDs: [Int32] = [3, 50, 51, 52, 99]
        // Row 50 already holds id 60 (column 10): with skippingHeld it must not appear twice.
        lists.insert(row: 50, score: -100, id: 60)
        CandidateScan.scan(dots: dots, ldc: columns, rowCount: rows, columnCount: columns, rowIDs: rowIDs, columnStart: 50,
                           rowNorms: rowNorms, columnNorms: columnNorms, metric: .euclidean, lists: lists, skippingHeld: true)
        for (r, row) in rowIDs.enumerated() {
            var expected: [(Float, Int32)] = (0..<columns).compactMap { c in
                let id = Int32(50 + c)
                if id == row || (row == 50 && id == 60) { return nil }
                return (rowNorms[r] + columnNorms[c] - 2 * dots[r * columns + c], id)
            }
            if row == 50 { expected.append((-100, 60)) }
            expected.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            let got = (0..<width).map { lists.ids[Int(row) * width + $0] }
            #expect(got == expected.prefix(width).map { $0.1 }, "row \(row)")
            #expect(Set(got).count == width && !got.contains(row))
        }
    }

    @Test("the candidate scan's first pass (lane minima bounding a row with no bound yet) keeps exactly the best, ties by id",
          arguments: [(300, 30), (64, 31), (32, 15), (1000, 10), (47, 5), (33, 100)])
    func candidateScanPresort(columns: Int, width: Int) {
        var rng = SeededGenerator(seed: 64)
        let rows = 6
        let dots = UnsafeMutablePointer<Float>.allocate(capacity: rows * columns)
        defer { dots.deallocate() }
        rng.fillGaussian(dots, count: rows * columns)
        // Coarse values: many equal scores, so the bound lands on ties.
        for i in 0..<(rows * columns) { dots[i] = (dots[i] * 4).rounded() / 4 }
        // Rows inside the tile (their own column skipped), at its first and last columns, and outside it.
        let rowIDs: [Int32] = [10, 10 + Int32(columns) - 1, 11, 1500, 10 + Int32(columns / 2), 0]
        // A row's own column scores best, as it would on real data: the bound must not count it.
        for (r, row) in rowIDs.enumerated() where row >= 10 && row < 10 + Int32(columns) { dots[r * columns + Int(row) - 10] = 100 }
        let rowNorms = [Float](repeating: 1, count: rows), columnNorms = [Float](repeating: 1, count: columns)
        let lists = NeighborLists(rows: 2000, k: width)
        defer { lists.deallocate() }
        CandidateScan.scan(dots: dots, ldc: columns, rowCount: rows, columnCount: columns, rowIDs: rowIDs, columnStart: 10,
                           rowNorms: rowNorms, columnNorms: columnNorms, metric: .euclidean, lists: lists)
        for (r, row) in rowIDs.enumerated() {
            var expected: [(Float, Int32)] = (0..<columns).compactMap { c in
                let id = Int32(10 + c)
                return id == row ? nil : (2 - 2 * dots[r * columns + c], id)
            }
            expected.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            let kept = min(width, expected.count)
            let got = (0..<kept).map { lists.ids[Int(row) * width + $0] }
            #expect(got == expected.prefix(kept).map { $0.1 }, "row \(row), \(columns) columns, width \(width)")
        }
    }

    func graph(_ data: FloatMatrix, k: Int = 10, threads: Int, configure: (inout ApproxKNNConfig) -> Void = { _ in }) throws -> (NeighborTable, ApproxKNNStats) {
        var config = ApproxKNNConfig(k: k)
        config.threads = threads
        config.recallSample = 300
        configure(&config)
        var engine = ApproxKNNGraph(config: config)
        engine.progressStyle = .silent
        return try engine.graph(data, metric: .euclidean)
    }

    @Test("a reduced-space graph: automatic dimension, exact distances, high recall, the same at any thread count")
    func reducedGraph() throws {
        let data = decayingMixture(rows: 4000, dimension: 256, clusters: 40, seed: 63)
        let (one, stats) = try graph(data, threads: 1)
        let (two, _) = try graph(data, threads: 2)
        #expect(stats.dimension == 96 && stats.candidates == 30, "dimension \(stats.dimension), candidates \(stats.candidates)")
        #expect(one.idArray == two.idArray && one.distanceArray == two.distanceArray)
        var engine = ExactKNN(config: ExactKNNConfig(k: 10, threads: 2))
        engine.progressStyle = .silent
        let reference = try engine.graph(data, metric: .euclidean).0
        var hits = 0
        for row in 0..<data.rows {
            let ids = one.ids(ofRow: row), distances = one.distances(ofRow: row)
            #expect(Set(ids).count == 10 && !ids.contains(Int32(row)))
            for (id, distance) in zip(ids, distances) {
                // Reported distances are exact (plain L2 from the full vectors), sorted.
                let exact = VectorKernels.squaredDistance(data.row(row), data.row(Int(id)), count: 256).squareRoot()
                #expect(abs(distance - exact) <= 1e-4 * max(1, exact))
            }
            #expect(zip(distances, distances.dropFirst()).allSatisfy { $0 <= $1 })
            hits += Set(ids).intersection(reference.ids(ofRow: row)).count
        }
        let recall = Double(hits) / Double(data.rows * 10)
        #expect(recall >= 0.9, "recall \(recall)")
        let sampled = try #require(stats.sampledRecall)
        #expect(abs(sampled.recall - recall) <= 0.03, "sampled \(sampled.recall), whole \(recall)")
        // The full vectors (dimension at the input's) are the unreduced path.
        let (_, full) = try graph(data, threads: 2) { $0.dimension = 256 }
        #expect(full.dimension == 256 && full.candidates == 10)
    }

    @Test("the search ranks with int8 products as well as with sgemm; distances stay exact")
    func integerRanking() throws {
        let data = decayingMixture(rows: 4000, dimension: 256, clusters: 40, seed: 64)
        func run(_ product: GEMMChoice) throws -> (NeighborTable, ApproxKNNStats) {
            var config = ApproxKNNConfig(k: 10)
            config.threads = 2
            config.recallSample = 400
            config.rounds = 0
            var engine = ApproxKNNGraph(config: config)
            engine.rankingProduct = product
            return try engine.graph(data, metric: .euclidean)
        }
        let (floats, floatStats) = try run(.fp32)
        let (integers, integerStats) = try run(.int8)
        let floatRecall = try #require(floatStats.sampledRecall).recall, integerRecall = try #require(integerStats.sampledRecall).recall
        // Quantization moves scores by about a percent: the same share of true neighbours.
        #expect(floatRecall >= 0.8 && abs(floatRecall - integerRecall) <= 0.01, "fp32 \(floatRecall), int8 \(integerRecall)")
        var same = 0
        for row in 0..<data.rows {
            let ids = integers.ids(ofRow: row)
            same += Set(ids).intersection(floats.ids(ofRow: row)).count
            for (id, distance) in zip(ids, integers.distances(ofRow: row)) {
                let exact = VectorKernels.squaredDistance(data.row(row), data.row(Int(id)), count: 256).squareRoot()
                #expect(abs(distance - exact) <= 1e-4 * max(1, exact))
            }
        }
        #expect(Double(same) / Double(data.rows * 10) >= 0.97, "ids shared with the sgemm ranking: \(same)")
    }

    @Test("leading eigenpairs by subspace iteration match the full solve")
    func leadingEigen() throws {
        let data = decayingMixture(rows: 2000, dimension: 96, clusters: 1, seed: 65)
        let covariance = Projection.moments(data, rows: Array(0..<2000), centered: true)
        let (allValues, allVectors) = try #require(LAPACK.symmetricEigen(covariance, n: 96))
        let (values, vectors) = try #require(LAPACK.leadingEigen(covariance, n: 96, count: 24, seed: 3))
        #expect(values.count == 24 && vectors.count == 24 * 96)
        for e in 0..<24 {
            #expect(abs(values[e] - allValues[e]) <= 1e-3 * allValues[0], "value \(e): \(values[e]) against \(allValues[e])")
            for f in 0..<24 {
                let dot = (0..<96).reduce(0.0) { $0 + vectors[e * 96 + $1] * vectors[f * 96 + $1] }
                #expect(abs(dot - (e == f ? 1 : 0)) <= 1e-9, "rows \(e), \(f): \(dot)")
            }
        }
        // The subspace: the top 24 found span the full solve's top 16 (projections near 1).
        for e in 0..<16 {
            let held = (0..<24).reduce(0.0) { sum, f in
                let dot = (0..<96).reduce(0.0) { $0 + vectors[f * 96 + $1] * allVectors[e * 96 + $1] }
                return sum + dot * dot
            }
            #expect(held >= 0.99, "direction \(e): \(held) of it in the subspace found")
        }
    }

    @Test("local join rounds raise recall and keep lists clean; a recall target is met in the reduced space")
    func joinRounds() throws {
        let data = decayingMixture(rows: 3000, dimension: 200, clusters: 60, seed: 64)
        let (_, noneStats) = try graph(data, threads: 2) { $0.rounds = 0; $0.partitions = 30 }
        let (three, stats) = try graph(data, threads: 2) { $0.rounds = 3; $0.partitions = 30 }
        let before = try #require(noneStats.sampledRecall)
        let after = try #require(stats.sampledRecall)
        #expect(after.recall > before.recall + 0.01, "recall \(before.recall) -> \(after.recall)")
        #expect(stats.rounds == 3)
        for row in 0..<data.rows {
            let ids = three.ids(ofRow: row)
            #expect(Set(ids).count == ids.count && !ids.contains(Int32(row)) && !ids.contains(-1))
        }
        let (_, targeted) = try graph(data, threads: 2) { $0.recall = 0.97; $0.recallSample = 400; $0.partitions = 30 }
        let measured = try #require(targeted.sampledRecall)
        // 4 x k candidates with a target when the reduced space holds under 90 % of the variance.
        #expect(measured.low >= 0.97 && targeted.candidates == (targeted.captured < 0.9 ? 40 : 30), "\(measured), \(targeted.candidates) candidates, \(targeted.captured)")
        #expect(targeted.captured > 0.9 && targeted.candidates == 30, "decaying variance: \(targeted.captured) held, \(targeted.candidates) candidates")
        // Isotropic data: 128 of 200 dimensions hold about 64 % of the variance, so 4 x k.
        let isotropic = gaussianMatrix(rows: 1500, dimension: 200, seed: 66)
        let (_, wide) = try graph(isotropic, threads: 2) { $0.recall = 0.5; $0.recallSample = 200; $0.partitions = 15 }
        #expect(wide.captured < 0.9 && wide.candidates == 40, "isotropic: \(wide.captured) held, \(wide.candidates) candidates")
    }
}

@Suite("Approximate graph: layout in place, hard synthetic sets")
struct GraphLayoutTests {
    @Test("laying rows out in the caller's matrix gives the same graph as a copy, reduced or not", arguments: [64, 256])
    func inPlace(dimension: Int) throws {
        let data = decayingMixture(rows: 2500, dimension: dimension, clusters: 25, seed: 65)
        let copy = FloatMatrix(rows: data.rows, columns: dimension)
        copy.pointer.update(from: data.pointer, count: data.rows * dimension)
        var config = ApproxKNNConfig(k: 8)
        config.threads = 2
        config.recallSample = 200
        var engine = ApproxKNNGraph(config: config)
        engine.progressStyle = .silent
        let (kept, keptStats) = try engine.graph(data, metric: .euclidean)
        let (moved, movedStats) = try engine.graph(copy, metric: .euclidean, reorderingInPlace: true)
        #expect(kept.idArray == moved.idArray && kept.distanceArray == moved.distanceArray)
        #expect(keptStats.sampledRecall == movedStats.sampledRecall)
        // Without reordering the caller's rows are untouched; with it, they are a permutation.
        let original = decayingMixture(rows: 2500, dimension: dimension, clusters: 25, seed: 65)
        #expect(data.array == original.array)
        if dimension < ApproxKNNGraph.reductionFrom {
            #expect(copy.array != original.array)
            let sums = { (m: FloatMatrix) in (0..<m.rows).map { VectorKernels.dot(m.row($0), m.row($0), count: dimension) }.sorted() }
            #expect(sums(copy) == sums(original))
        }
    }

    @Test("a set above the memory limit spills its vectors beside the output: the same graph, nothing left behind", arguments: [32, 256])
    func spilled(dimension: Int) throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        #expect(try simjob("generate", data, "--n", "3000", "--queries", "1", "--dim", "\(dimension)", "--k", "0", "--quiet").status == 0)
        let options = ["--k", "8", "--method", "approx", "--threads", "2", "--quiet"] + (dimension > 64 ? ["--dimension", "48"] : [])
        var config = ApproxKNNConfig(k: 8)
        config.threads = 2
        if dimension > 64 { config.dimension = 48 }
        let plan = ApproxKNNGraph.memoryPlan(rows: 3000, dimension: dimension, config: config)
        // Room for everything but the vectors.
        let limit = "\(plan.state + plan.vectors / 2)"
        let inMemory = try simjob(["knn-graph", data, "--output", folder.file("memory.hdf5")] + options)
        #expect(inMemory.status == 0, "\(inMemory.stderr)")
        let outputs = folder.file("out")
        try FileManager.default.createDirectory(atPath: outputs, withIntermediateDirectories: true)
        let spilled = try simjob(["knn-graph", data, "--output", outputs + "/spilled.hdf5", "--memory-limit", limit] + options)
        #expect(spilled.status == 0 && spilled.stdout.contains("spilled to disk"), "\(spilled.stdout) \(spilled.stderr)")
        let report = try python("""
            import sys, h5py, numpy as np
            a = h5py.File(sys.argv[1], "r")["knn_graph"]; b = h5py.File(sys.argv[2], "r")["knn_graph"]
            same = np.array_equal(a["neighbors"][:], b["neighbors"][:]) and np.array_equal(a["distances"][:], b["distances"][:])
            print(same, "spilled_bytes" in a.attrs, int(b.attrs["spilled_bytes"]))
            """, folder.file("memory.hdf5"), outputs + "/spilled.hdf5")
        #expect(report == "True False \(3000 * dimension * 4)")
        // The spill files were unlinked as soon as made: only the output is there.
        #expect(try FileManager.default.contentsOfDirectory(atPath: outputs) == ["spilled.hdf5"])
        // No room for the spill file (a file-size limit stands in for a full disk): one line
        // naming the folder, no output, nothing left.
        try FileManager.default.removeItem(atPath: outputs + "/spilled.hdf5")
        let full = try runProgram("/bin/sh", ["-c", "ulimit -f 256; exec \"$0\" \"$@\"", simjobPath, "knn-graph", data, "--output", outputs + "/spilled.hdf5",
                                               "--memory-limit", limit] + options)
        #expect(full.status == 1 && full.stderr.contains("no room for a spill file") && full.stderr.contains(outputs), "\(full.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outputs).isEmpty)
        // State alone above the limit: refused before anything is read.
        let tight = try simjob(["knn-graph", data, "--output", outputs + "/spilled.hdf5", "--memory-limit", "\(plan.state / 2)"] + options)
        #expect(tight.status == 1 && tight.stderr.contains("besides the vectors"), "\(tight.stderr)")
    }

    @Test("generate --anisotropy: the same file at any thread count, harder than a latent mixture, and refused with --latent-dim")
    func anisotropic() throws {
        let folder = TemporaryFolder()
        let one = folder.file("one.hdf5"), two = folder.file("two.hdf5"), latent = folder.file("latent.hdf5")
        #expect(try simjob("generate", one, "--n", "4000", "--queries", "5", "--dim", "32", "--clusters", "100", "--anisotropy", "1", "--k", "0", "--threads", "1", "--quiet").status == 0)
        #expect(try simjob("generate", two, "--n", "4000", "--queries", "5", "--dim", "32", "--clusters", "100", "--anisotropy", "1", "--k", "0", "--threads", "2", "--quiet").status == 0)
        let same = try python("""
            import sys, h5py, numpy as np
            a, b = h5py.File(sys.argv[1], "r")["train"][:], h5py.File(sys.argv[2], "r")["train"][:]
            print(np.array_equal(a, b), a.shape)
            """, one, two)
        #expect(same == "True (4000, 32)")
        // Two cells per row and no join rounds: the anisotropic set keeps fewer true neighbours.
        #expect(try simjob("generate", latent, "--n", "4000", "--queries", "5", "--dim", "32", "--clusters", "100", "--latent-dim", "4", "--k", "0", "--quiet").status == 0)
        func recall(_ file: String) throws -> Double {
            let result = try simjob("knn-graph", file, "--k", "10", "--method", "approx", "--nprobe", "2", "--rounds", "0", "--output", folder.file("g.hdf5"), "--quiet")
            let text = result.stdout
            let value = text.range(of: "sampled recall ").map { text[$0.upperBound...].prefix(6) } ?? ""
            return Double(value) ?? -1
        }
        let hard = try recall(one), easy = try recall(latent)
        #expect(hard >= 0 && easy >= 0 && hard + 0.05 < easy, "anisotropic \(hard), latent \(easy)")
        let both = try simjob("generate", folder.file("x.hdf5"), "--n", "10", "--anisotropy", "1", "--latent-dim", "4")
        #expect(both.status != 0 && both.stderr.contains("--anisotropy and --latent-dim exclude each other"), "\(both.stderr)")
        let negative = try simjob("generate", folder.file("x.hdf5"), "--n", "10", "--anisotropy", "-1")
        #expect(negative.status == 64, "\(negative.stderr)")
    }
}

@Suite("Approximate graph: edge cases of the reduced space")
struct ReducedGraphEdgeTests {
    func run(_ data: FloatMatrix, k: Int, metric: Metric = .euclidean, configure: (inout ApproxKNNConfig) -> Void = { _ in }) throws -> (NeighborTable, ApproxKNNStats) {
        var config = ApproxKNNConfig(k: k)
        config.threads = 2
        config.recallSample = 0
        configure(&config)
        var engine = ApproxKNNGraph(config: config)
        engine.progressStyle = .silent
        return try engine.graph(data, metric: metric)
    }

    func exact(_ data: FloatMatrix, k: Int, metric: Metric = .euclidean) throws -> NeighborTable {
        var engine = ExactKNN(config: ExactKNNConfig(k: k, threads: 2))
        engine.progressStyle = .silent
        return try engine.graph(data, metric: metric).0
    }

    @Test("tiny sets in many dimensions (fewer rows than reduced dimensions), k = n - 1 included, are exact", arguments: [(12, 5), (12, 11), (40, 39), (3, 2)])
    func tiny(rows: Int, k: Int) throws {
        let data = decayingMixture(rows: rows, dimension: 200, clusters: 3, seed: 66)
        let (table, stats) = try run(data, k: k)
        #expect(stats.dimension == 80 && stats.partitions == 1)
        let reference = try exact(data, k: k)
        #expect(table.idArray == reference.idArray)
        for (got, expected) in zip(table.distanceArray, reference.distanceArray) { #expect(abs(got - expected) <= 1e-4 * max(1, expected)) }
    }

    @Test("options at their limits: fewer candidates than k, joins wider than the lists, a dimension above the input's")
    func limits() throws {
        let data = decayingMixture(rows: 600, dimension: 192, clusters: 6, seed: 67)
        let (_, narrow) = try run(data, k: 8) { $0.candidates = 3 }
        #expect(narrow.candidates == 8 && narrow.dimension == 64)
        let (wide, wideStats) = try run(data, k: 8) { $0.expand = 500; $0.candidates = 20; $0.rounds = 3 }
        #expect(wideStats.rounds == 3 && wideStats.candidates == 20)
        for row in 0..<data.rows { #expect(!wide.ids(ofRow: row).contains(Int32(row)) && Set(wide.ids(ofRow: row)).count == 8) }
        let (_, full) = try run(data, k: 8) { $0.dimension = 10_000 }
        #expect(full.dimension == 192 && full.candidates == 8)
        let (_, below) = try run(decayingMixture(rows: 300, dimension: 191, clusters: 3, seed: 68), k: 8)
        #expect(below.dimension == 191)
    }

    @Test("angular sets with zero vectors: reduced ranking, exact distances (a zero vector is at distance 1)")
    func zeroVectors() throws {
        let data = decayingMixture(rows: 500, dimension: 256, clusters: 5, seed: 69)
        for row in [0, 7, 8] { data.row(row).initialize(repeating: 0, count: 256) }
        VectorKernels.normalizeRows(data.pointer, rows: data.rows, dimension: 256)
        let (table, stats) = try run(data, k: 6, metric: .angular)
        #expect(stats.dimension == 96)
        for row in 0..<data.rows {
            for (id, distance) in zip(table.ids(ofRow: row), table.distances(ofRow: row)) {
                #expect(id >= 0 && distance >= -1e-5 && distance <= 2 + 1e-5)
                if [0, 7, 8].contains(row) || [0, 7, 8].contains(Int(id)) { #expect(distance == 1, "row \(row), id \(id): \(distance)") }
            }
        }
    }

    @Test("the new options are bounded on the command line")
    func bounds() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        #expect(try simjob("generate", data, "--n", "300", "--queries", "1", "--dim", "8", "--k", "0", "--quiet").status == 0)
        for (option, value) in [("--dimension", "-1"), ("--candidates", "100001"), ("--expand", "-3")] {
            let result = try simjob("knn-graph", data, "--k", "5", "--method", "approx", option, value, "--output", folder.file("g.hdf5"))
            #expect(result.status == 64 && result.stderr.contains(option), "\(option) \(value): \(result.stderr)")
        }
        // A memory limit below the graph's estimate is refused before anything is read or written.
        let tight = try simjob("knn-graph", data, "--k", "5", "--method", "approx", "--memory-limit", "20K", "--output", folder.file("g.hdf5"))
        #expect(tight.status == 1 && tight.stderr.contains("above the memory limit") && tight.stderr.contains("data.hdf5"), "\(tight.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.file("g.hdf5")))
        let roomy = try simjob("knn-graph", data, "--k", "5", "--method", "approx", "--memory-limit", "1G", "--output", folder.file("g.hdf5"), "--quiet")
        #expect(roomy.status == 0, "\(roomy.stderr)")
        let estimate = ApproxKNNGraph.estimatedBytes(rows: 10_000_000, dimension: 128, config: ApproxKNNConfig(k: 10))
        #expect(estimate > 8 << 30 && estimate < 12 << 30, "10M x 128 estimated at \(estimate) bytes (measured peak 8.25 GiB)")
        let exactWithApproxOption = try simjob("knn-graph", data, "--k", "5", "--candidates", "20", "--output", folder.file("g.hdf5"))
        #expect(exactWithApproxOption.status == 64 && exactWithApproxOption.stderr.contains("--candidates applies to --method approx only"))
    }
}
