import Foundation
import Testing
@testable import SimjobAlgorithms
@testable import SimjobBLAS
@testable import SimjobKernels
@testable import SimjobHDF5
@testable import SimjobOperations

/// The reduced-precision products (oneDNN int8 and bf16) against the fp32 engine: the lists
/// must be identical (ids, distances, tie order) on data built to break a careless margin.
@Suite("Reduced-precision products")
struct ReducedGEMMTests {
    /// The reduced formats oneDNN multiplies on this CPU: int8 everywhere (its range set by
    /// `ReducedGEMM.int8Levels`), bf16 where oneDNN has a kernel (AVX-512 BF16, AMX). The
    /// test "bf16 where oneDNN has no kernel" checks the other case.
    static let formats: [GEMMChoice] = [.int8] + (ReducedGEMM(format: .bf16) != nil ? [.bf16] : [])

    func engine(k: Int, gemm: GEMMChoice, block: Int = 64, symmetric: Bool = true) -> ExactKNN {
        var config = ExactKNNConfig(k: k, threads: 2)
        config.block = block
        config.gemm = gemm
        config.symmetric = symmetric
        var engine = ExactKNN(config: config)
        engine.progressStyle = .silent
        return engine
    }

    /// Rows that stress the bound: Gaussian rows, exact duplicates, near-ties (a row plus noise
    /// at 1e-6 of its scale), rows scaled by 1e4 and 1e-4, zero vectors, one-hot rows (int8's
    /// scale then rests on one coordinate) and rows of one repeated value.
    static func adversarial(rows: Int, dimension: Int, seed: UInt64) -> FloatMatrix {
        let base = gaussianMatrix(rows: rows, dimension: dimension, seed: seed)
        var rng = SeededGenerator(seed: seed &+ 99)
        for row in 0..<rows {
            let x = base.row(row)
            switch row % 9 {
            case 1: x.update(from: base.row(row - 1), count: dimension)  // exact duplicate
            case 2:  // near tie with the row before
                for i in 0..<dimension { x[i] = base.row(row - 1)[i] * (1 + 1e-6 * Float(Int(rng.next() % 3) - 1)) }
            case 3: for i in 0..<dimension { x[i] *= 1e4 }
            case 4: for i in 0..<dimension { x[i] *= 1e-4 }
            case 5: for i in 0..<dimension { x[i] = 0 }
            case 6:
                for i in 0..<dimension { x[i] = 0 }
                x[Int(rng.next() % UInt64(dimension))] = 3
            case 7: for i in 0..<dimension { x[i] = 0.5 }
            default: break
            }
        }
        return base
    }

    func expectIdentical(_ a: NeighborTable, _ b: NeighborTable, _ what: String) {
        #expect(a.idArray == b.idArray, "\(what): ids differ")
        #expect(a.distanceArray.map(\.bitPattern) == b.distanceArray.map(\.bitPattern), "\(what): distances differ")
    }

    @Test("graphs identical to fp32 on adversarial rows", arguments: formats, Metric.allCases)
    func graphIdentical(gemm: GEMMChoice, metric: Metric) throws {
        // 300 rows in blocks of 64 (ragged last block), dimension 37 (a SIMD tail everywhere).
        let data = Self.adversarial(rows: 300, dimension: 37, seed: 21)
        let (reference, fp32Stats) = try engine(k: 8, gemm: .fp32).graph(data, metric: metric)
        let (reduced, stats) = try engine(k: 8, gemm: gemm).graph(data, metric: metric)
        #expect(fp32Stats.gemm == "fp32")
        #expect(stats.gemm == gemm.rawValue, "the engine did not use \(gemm)")
        expectIdentical(reference, reduced, "\(gemm) \(metric) graph")
        // The slack widens the filter: never fewer exact re-scores than fp32's.
        #expect(stats.rescored >= fp32Stats.rescored)
    }

    @Test("search, k = 1 and the unsymmetric graph identical to fp32", arguments: formats)
    func searchIdentical(gemm: GEMMChoice) throws {
        let base = Self.adversarial(rows: 257, dimension: 64, seed: 5)
        let queries = Self.adversarial(rows: 70, dimension: 64, seed: 6)
        for metric in Metric.allCases {
            for k in [1, 13] {
                let (reference, _) = try engine(k: k, gemm: .fp32).search(queries: queries, base: base, metric: metric)
                let (reduced, _) = try engine(k: k, gemm: gemm).search(queries: queries, base: base, metric: metric)
                expectIdentical(reference, reduced, "\(gemm) \(metric) search k=\(k)")
            }
            let (reference, _) = try engine(k: 5, gemm: .fp32, symmetric: false).graph(base, metric: metric)
            let (reduced, _) = try engine(k: 5, gemm: gemm, symmetric: false).graph(base, metric: metric)
            expectIdentical(reference, reduced, "\(gemm) \(metric) unsymmetric graph")
        }
    }

    @Test("integer rows with constant ties: same tie order as fp32")
    func integerTies() throws {
        var rng = SeededGenerator(seed: 3)
        let values = (0..<(240 * 5)).map { _ in Float(rng.next() % 3) }
        let data = FloatMatrix(rows: 240, columns: 5, values: values)
        for gemm in Self.formats {
            let (reference, _) = try engine(k: 9, gemm: .fp32, block: 32).graph(data, metric: .euclidean)
            let (reduced, _) = try engine(k: 9, gemm: gemm, block: 32).graph(data, metric: .euclidean)
            expectIdentical(reference, reduced, "\(gemm) integer ties")
        }
    }

    @Test("the bound holds: |x.y - reduced product| <= ||x^|| ||e_y|| + ||e_x|| ||y|| for every pair", arguments: formats)
    func boundHolds(gemm: GEMMChoice) throws {
        let n = 120, d = 50
        let data = Self.adversarial(rows: n, dimension: d, seed: 8)
        let format = gemm.format!
        let rows = ReducedRows.allocate(format: format, rows: n, dimension: d)
        defer { rows.deallocate() }
        rows.encode(data.pointer, rows: 0..<n)
        let multiplier = try #require(ReducedGEMM(format: format))
        let products = UnsafeMutableRawPointer.allocate(byteCount: n * n * 4, alignment: 64)
        defer { products.deallocate() }
        multiplier.multiply(m: n, n: n, k: d, a: rows.aSide(0), lda: d, b: rows.bSide(0), ldb: d, c: products, ldc: n)
        var worst = 0.0
        for i in 0..<n {
            for j in 0..<n {
                var exact = 0.0
                for t in 0..<d { exact += Double(data.row(i)[t]) * Double(data.row(j)[t]) }
                let approximate: Double
                if format == .int8 {
                    let sum = products.load(fromByteOffset: (i * n + j) * 4, as: Int32.self) - rows.offsets[j]
                    approximate = Double(rows.scales[i]) * Double(rows.scales[j]) * Double(sum)
                } else {
                    approximate = Double(products.load(fromByteOffset: (i * n + j) * 4, as: Float.self))
                }
                let bound = Double(rows.hat[i]) * Double(rows.error[j]) + Double(rows.error[i]) * Double(rows.length[j])
                // fp32 accumulation (bf16) adds rounding the scans' fp32 margin covers: allow it.
                let rounding = 1e-5 * (Double(rows.length[i]) * Double(rows.length[i]) + Double(rows.length[j]) * Double(rows.length[j])) + 1e-30
                #expect(abs(exact - approximate) <= bound + rounding, "pair (\(i), \(j)): error \(abs(exact - approximate)) above bound \(bound)")
                if bound > 0 { worst = max(worst, abs(exact - approximate) / bound) }
            }
        }
        // A bound that is never approached would be suspiciously loose; one never exceeded is the point.
        #expect(worst > 0.01, "the bound is never approached (worst error / bound \(worst))")
    }

    @Test("int8 encoding: integer sums are exact and the offset undoes the unsigned side")
    func int8Encoding() throws {
        let data = FloatMatrix(rows: 2, columns: 4, values: [1, -2, 3, -4, 0.5, 0.5, -0.25, 127])
        let rows = ReducedRows.allocate(format: .int8, rows: 2, dimension: 4)
        defer { rows.deallocate() }
        rows.encode(data.pointer, rows: 0..<2)
        // Row 0: scale 4 / L, q = round(x * L / 4), with L = 127 (or 63 where oneDNN's kernel
        // saturates byte pairs: then q = [16, -32, 47, -63] and the A side is q + 64).
        let levels = ReducedGEMM.int8Levels
        #expect(levels == 127 || levels == 63)
        let q = levels == 127 ? [32, -64, 95, -127] : [16, -32, 47, -63]
        #expect(rows.scales[0] == Float(4) / Float(levels))
        #expect((0..<4).map { Int(rows.signed![$0]) } == q)
        #expect((0..<4).map { Int(rows.unsigned![$0]) } == q.map { $0 + Int(levels) + 1 })
        #expect(rows.offsets[0] == (levels + 1) * Int32(q.reduce(0, +)))
        let multiplier = try #require(ReducedGEMM(format: .int8))
        var out = [Int32](repeating: 0, count: 4)
        out.withUnsafeMutableBytes { c in
            multiplier.multiply(m: 2, n: 2, k: 4, a: rows.aSide(0), lda: 4, b: rows.bSide(0), ldb: 4, c: c.baseAddress!, ldc: 2)
        }
        let q0 = (0..<4).map { Int32(rows.signed![$0]) }, q1 = (0..<4).map { Int32(rows.signed![4 + $0]) }
        let dot01 = zip(q0, q1).reduce(Int32(0)) { $0 + $1.0 * $1.1 }
        #expect(out[1] - rows.offsets[1] == dot01)
        #expect(out[0] - rows.offsets[0] == q0.reduce(0) { $0 + $1 * $1 })
    }

    @Test("int8 sums are exact at the range this CPU was found to sum exactly: extreme values, long rows")
    func int8RangeExact() throws {
        // The start-up check's claim, tested on other data: every value at +-L, A side biased.
        let levels = Int(ReducedGEMM.int8Levels)
        let (m, n, k) = (33, 65, 256)
        var rng = SeededGenerator(seed: 17)
        let q = (0..<((m + n) * k)).map { _ in rng.next() % 4 == 0 ? Int8(-levels) : Int8(levels - Int(rng.next() % 2)) }
        let a = q[0..<(m * k)].map { UInt8(Int($0) + levels + 1) }, b = Array(q[(m * k)...])
        let multiplier = try #require(ReducedGEMM(format: .int8))
        var c = [Int32](repeating: 0, count: m * n)
        a.withUnsafeBytes { a in b.withUnsafeBytes { b in c.withUnsafeMutableBytes { c in
            multiplier.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!, ldb: k, c: c.baseAddress!, ldc: n)
        } } }
        var wrong = 0
        for i in 0..<m {
            for j in 0..<n {
                var exact = 0
                for t in 0..<k { exact += Int(a[i * k + t]) * Int(b[j * k + t]) }
                if Int(c[i * n + j]) != exact { wrong += 1 }
            }
        }
        #expect(wrong == 0, "\(wrong) of \(m * n) int8 sums are not exact at levels \(levels)")
    }

    @Test("bf16 where oneDNN has no kernel: --gemm bf16 is refused with one line, auto never picks it")
    func bf16Availability() throws {
        if ReducedGEMM(format: .bf16) == nil {
            #expect(throws: SimjobError.self) { try GEMMCalibration.resolve(.bf16, dimension: 128, flops: 1e12) }
            let folder = TemporaryFolder()
            let data = folder.file("data.hdf5")
            #expect(try simjob("generate", data, "--n", "300", "--queries", "5", "--dim", "16", "--k", "0", "--quiet").status == 0)
            let result = try simjob("knn-graph", data, "--k", "3", "--gemm", "bf16", "--output", folder.file("g.hdf5"), "--quiet")
            #expect(result.status != 0 && result.stderr.contains("oneDNN has no bf16 matrix product on this CPU"), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: folder.file("g.hdf5")))
        } else {
            #expect(try GEMMCalibration.resolve(.bf16, dimension: 128, flops: 1e12) == .bf16)
        }
        for dimension in [128, 384] {
            let format = try GEMMCalibration.resolve(.auto, dimension: dimension, flops: 1e15)
            #expect(format != .bf16 || ReducedGEMM(format: .bf16) != nil)
        }
    }

    @Test("choices: fp32 and auto on small products never reduce; a dimension past int8's sums is refused")
    func choices() throws {
        #expect(try GEMMCalibration.resolve(.fp32, dimension: 128, flops: 1e15) == nil)
        #expect(try GEMMCalibration.resolve(.auto, dimension: 128, flops: 1e6) == nil)
        // Below the measured dimensions auto keeps fp32 however large the product.
        #expect(try GEMMCalibration.resolve(.auto, dimension: 32, flops: 1e15) == nil)
        #expect(try GEMMCalibration.resolve(.auto, dimension: 128, flops: 1e15, minimumDimension: GEMMCalibration.minimumAssignmentDimension) == nil)
        #expect(try GEMMCalibration.resolve(.int8, dimension: 8, flops: 1) == .int8)
        #expect(try GEMMCalibration.resolve(.int8, dimension: 128, flops: 1) == .int8)
        #expect(throws: SimjobError.self) { try GEMMCalibration.resolve(.int8, dimension: 70_000, flops: 1) }
        // auto takes a reduced format only when the calibration measured it at least twice as fast.
        var measured = GEMMCalibration.Measurement(dimension: 64, fp32: 100)
        measured.int8 = 150
        measured.bf16 = 90
        #expect(measured.automaticFormat == nil)
        measured.int8 = 400
        #expect(measured.automaticFormat == .int8)
        measured.bf16 = 500
        #expect(measured.automaticFormat == .bf16)
    }

    @Test("commands: --gemm int8 and bf16 give fp32's file whole and streamed by chunks; the job key does too; a bad value is refused")
    func commands() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        #expect(try simjob("generate", data, "--n", "2500", "--queries", "40", "--dim", "20", "--duplicates", "0.04", "--k", "0", "--quiet").status == 0)
        func arrays(_ path: String, _ names: [String]) throws -> [[Float]] {
            try names.map { try HDF5File.open(path).dataset($0).readAll(as: Float.self) }
        }
        let graphNames = ["knn_graph/neighbors", "knn_graph/distances"], truthNames = ["neighbors", "distances"]
        let reference = folder.file("fp32.hdf5"), truth = folder.file("truth-fp32.hdf5")
        #expect(try simjob("knn-graph", data, "--k", "8", "--output", reference, "--quiet", "--block", "256", "--gemm", "fp32").status == 0)
        #expect(try simjob("groundtruth", data, "--k", "8", "--output", truth, "--quiet", "--block", "256", "--gemm", "fp32").status == 0)
        for gemm in Self.formats.map(\.rawValue) {
            for limit in [[], ["--memory-limit", "140K"]] {
                let output = folder.file("\(gemm)\(limit.count).hdf5")
                let result = try simjob(["knn-graph", data, "--k", "8", "--output", output, "--block", "256", "--gemm", gemm] + limit)
                #expect(result.status == 0, "\(result.stderr)")
                #expect(result.stdout.contains("of \(gemm) GEMM"), "\(result.stdout)")
                if !limit.isEmpty { #expect(result.stdout.contains("streamed in"), "\(result.stdout)") }
                #expect(try arrays(output, graphNames) == arrays(reference, graphNames), "\(gemm) \(limit): the graph differs from fp32's")
                let truthOutput = folder.file("truth-\(gemm)\(limit.count).hdf5")
                let searched = try simjob(["groundtruth", data, "--k", "8", "--output", truthOutput, "--quiet", "--block", "256", "--gemm", gemm] + limit)
                #expect(searched.status == 0, "\(searched.stderr)")
                #expect(try arrays(truthOutput, truthNames) == arrays(truth, truthNames), "\(gemm) \(limit): ground truth differs from fp32's")
            }
        }
        // The job key.
        let job = folder.file("job.yaml")
        FileManager.default.createFile(atPath: job, contents: Data("""
            output: \(folder.file("out"))
            steps:
              - name: graph
                knn_graph: {input: \(data), k: 8, block: 256, gemm: int8}
            """.utf8))
        let run = try simjob("run", job, "--quiet")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try arrays(folder.file("out") + "/graph.hdf5", graphNames) == arrays(reference, graphNames))
        // Bad values: one line naming the option or key.
        let bad = try simjob("knn-graph", data, "--k", "8", "--output", folder.file("bad.hdf5"), "--gemm", "fp16")
        #expect(bad.status != 0 && bad.stderr.contains("--gemm"), "\(bad.stderr)")
        FileManager.default.createFile(atPath: job, contents: Data("""
            output: \(folder.file("out2"))
            steps:
              - name: graph
                knn_graph: {input: \(data), k: 8, gemm: int4}
            """.utf8))
        let badJob = try simjob("run", job, "--quiet")
        #expect(badJob.status != 0 && badJob.stderr.contains("job.yaml:4") && badJob.stderr.contains("gemm"), "\(badJob.stderr)")
        // Exact dedup takes a reduced product only when its copy of the rows fits the memory
        // limit (vectors 195 KiB + state 78 KiB + int8 copy 146 KiB > 300K): fp32 then, same groups.
        let roomy = try simjob("dedup", data, "--threshold", "0.3", "--output", folder.file("d1.hdf5"), "--gemm", "int8")
        let tight = try simjob("dedup", data, "--threshold", "0.3", "--output", folder.file("d2.hdf5"), "--gemm", "int8", "--memory-limit", "300K")
        #expect(roomy.status == 0 && tight.status == 0, "\(roomy.stderr) \(tight.stderr)")
        #expect(tight.stderr.contains("does not fit within the memory limit") && !roomy.stderr.contains("does not fit"), "\(tight.stderr)")
        #expect(try arrays(folder.file("d1.hdf5"), ["dedup/group", "dedup/keep"]) == arrays(folder.file("d2.hdf5"), ["dedup/group", "dedup/keep"]))
        // An approximate graph refuses the exact engine's option rather than ignoring it.
        let approx = try simjob("knn-graph", data, "--k", "8", "--method", "approx", "--output", folder.file("a.hdf5"), "--gemm", "int8")
        #expect(approx.status != 0 && approx.stderr.contains("--gemm"), "\(approx.stderr)")
    }

    @Test("exact dedup finds fp32's pairs, distances and groups with int8 and bf16 products", arguments: formats, Metric.allCases)
    func dedupIdentical(gemm: GEMMChoice, metric: Metric) throws {
        // Adversarial rows hold exact duplicates and near ties; thresholds around their distances.
        let data = Self.adversarial(rows: 700, dimension: 33, seed: 31)
        func run(_ gemm: GEMMChoice) throws -> DedupResult {
            var config = DedupConfig(thresholds: metric == .euclidean ? [1e-3, 0.5, 3] : metric == .angular ? [1e-6, 0.05, 0.3] : [-20, -5])
            config.threads = 2
            config.gemm = gemm
            return try Dedup(config: config).run(data, metric: metric)
        }
        let reference = try run(.fp32), reduced = try run(gemm)
        #expect(reference.pairs.count > 0, "no pairs: the test data does not exercise the join")
        #expect(reduced.pairs.map(\.0) == reference.pairs.map(\.0) && reduced.pairs.map(\.1) == reference.pairs.map(\.1), "\(gemm) \(metric): pairs differ")
        #expect(reduced.pairDistances.map(\.bitPattern) == reference.pairDistances.map(\.bitPattern), "\(gemm) \(metric): distances differ")
        for (a, b) in zip(reduced.byThreshold, reference.byThreshold) {
            #expect(a.group == b.group && a.keep == b.keep, "\(gemm) \(metric): groups differ at \(b.threshold)")
        }
    }

    @Test("k-means: int8, bf16 and fp32 give the same assignments, objectives and centroids at every iteration")
    func kmeansIdentical() throws {
        // Adversarial rows (duplicates, near ties, zero and one-hot rows), integer rows whose
        // distances to integer centroids tie constantly, and spherical k-means. int8 and bf16
        // both assign by exact score; fp32 takes sgemm's argmin, which can differ from it only
        // where two centroids' distances agree to fp32 rounding, so it is compared on Gaussian rows.
        var rng = SeededGenerator(seed: 12)
        let integers = FloatMatrix(rows: 600, columns: 6, values: (0..<3600).map { _ in Float(rng.next() % 3) })
        func train(_ data: FloatMatrix, _ gemm: GEMMChoice, spherical: Bool = false) throws -> KMeansResult {
            var config = KMeansConfig(k: 37)
            config.iterations = 6
            config.threads = 2
            config.spherical = spherical
            config.gemm = gemm
            return try KMeans(config: config).train(data)
        }
        func expectSame(_ a: KMeansResult, _ b: KMeansResult, _ what: String, objectiveTolerance: Double = 0) {
            // fp32's objective sums the expansion's distances, the others exact ones (1e-6 apart).
            let objectives = zip(a.iterations.map(\.objective), b.iterations.map(\.objective))
            #expect(objectives.allSatisfy { abs($0 - $1) <= objectiveTolerance * abs($0) }, "\(what): objectives differ")
            #expect(a.centroids.array.map(\.bitPattern) == b.centroids.array.map(\.bitPattern), "\(what): centroids differ")
            #expect(a.clusterSizes == b.clusterSizes, "\(what): cluster sizes differ")
        }
        for (data, spherical, name) in [(Self.adversarial(rows: 1500, dimension: 40, seed: 41), false, "adversarial"), (integers, false, "integers"),
                                        (Self.adversarial(rows: 800, dimension: 24, seed: 42), true, "spherical")] {
            for gemm in Self.formats.dropFirst() {
                expectSame(try train(data, .int8, spherical: spherical), try train(data, gemm, spherical: spherical), "\(name) int8 / \(gemm)")
            }
        }
        let gaussian = gaussianMatrix(rows: 2000, dimension: 48, seed: 45)
        let reference = try train(gaussian, .fp32)
        for gemm in Self.formats {
            expectSame(reference, try train(gaussian, gemm), "gaussian fp32 / \(gemm)", objectiveTolerance: 1e-6)
        }
        // The assignment itself against a brute force by exact distance, ties to the lower index,
        // for both products and for exact fp32.
        let points = Self.adversarial(rows: 300, dimension: 20, seed: 43)
        let centroids = Self.adversarial(rows: 45, dimension: 20, seed: 44)
        for (gemm, exact) in Self.formats.map({ ($0, false) }) + [(GEMMChoice.fp32, true)] {
            for innerProduct in [false, true] {
                var indices = [Int32](repeating: -1, count: 300), scores = [Float](repeating: 0, count: 300)
                let assigner = NearestCentroid(centroids: centroids, innerProduct: innerProduct, gemm: gemm, exact: exact)
                try assigner.assign(points.pointer, rows: 300, lda: 20, rowNorms: nil, indices: &indices, scores: &scores, threads: 2)
                #expect(assigner.lastProduct == gemm.rawValue)
                let metric: Metric = innerProduct ? .ip : .euclidean
                for row in 0..<300 {
                    var best = Float.infinity, bestIndex = -1
                    for c in 0..<45 {
                        let score = metric.exactScore(points.row(row), centroids.row(c), dimension: 20)
                        if score < best { best = score; bestIndex = c }
                    }
                    #expect(Int(indices[row]) == bestIndex && scores[row] == best, "\(gemm) ip=\(innerProduct) row \(row)")
                }
            }
        }
    }

    @Test("IVF-PQ: the same index (cells, codes) with fp32, int8 and bf16 products")
    func ivfpqIdentical() throws {
        let folder = TemporaryFolder()
        let data = gaussianMatrix(rows: 900, dimension: 16, seed: 51)
        let path = folder.file("data.hdf5")
        try IVFPQTests().writeDataset(data, queries: gaussianMatrix(rows: 10, dimension: 16, seed: 52), metric: .euclidean, to: path)
        let source = try VectorSource(DatasetReference(path: path, dataset: "train"))
        func train(_ gemm: GEMMChoice) throws -> IVFPQIndex {
            var config = IVFPQConfig(nlist: 16, m: 4, nbits: 5)
            config.threads = 2
            config.gemm = gemm
            return try IVFPQIndex.train(source, metric: .euclidean, config: config).0
        }
        let reference = try train(.fp32)
        for gemm in Self.formats {
            let reduced = try train(gemm)
            #expect(reduced.ids == reference.ids && reduced.listOffsets == reference.listOffsets, "\(gemm): cells differ")
            #expect(reduced.codes == reference.codes, "\(gemm): codes differ")
            #expect(reduced.coarseCentroids.array == reference.coarseCentroids.array)
        }
    }

    @Test("auto's measurements are cached per machine: written by info --system, a damaged cache is replaced, an unwritable folder or a folder in the file's place costs nothing")
    func calibrationCache() throws {
        let folder = TemporaryFolder()
        let cache = folder.file("cache")
        var environment = ProcessInfo.processInfo.environment
        environment["SIMJOB_CACHE_DIR"] = cache
        let first = try runProgram(simjobPath, ["info", "--system", "--sgemm-seconds", "0.05"], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: cache).filter { $0.hasPrefix("gemm-") && $0.hasSuffix(".json") }
        #expect(files.count == 1, "cache folder holds \(files)")
        #expect(first.stdout.contains("measurements cached in \(cache)/gemm-"), "\(first.stdout)")
        let path = cache + "/" + (files.first ?? "")
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        #expect(Set(stored?.keys.map { $0 } ?? []) == ["128", "384", "784"])
        // Damaged content is replaced by the next measurement, not read.
        FileManager.default.createFile(atPath: path, contents: Data("{not json".utf8))
        #expect(try runProgram(simjobPath, ["info", "--system", "--sgemm-seconds", "0.05"], environment: environment).status == 0)
        let replaced = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        #expect(replaced?.count == 3)
        // A folder where the cache file should be: it can be neither read nor replaced; no harm.
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        let folderInTheWay = try runProgram(simjobPath, ["info", "--system", "--sgemm-seconds", "0.05"], environment: environment)
        #expect(folderInTheWay.status == 0, "\(folderInTheWay.stderr)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: cache).filter { $0.contains(".tmp-") }) == [], "temporary cache files left")
        // A cache location that cannot be created (a file stands where the folder would go).
        let blocked = folder.file("blocked")
        FileManager.default.createFile(atPath: blocked, contents: Data())
        environment["SIMJOB_CACHE_DIR"] = blocked + "/sub"
        let unwritable = try runProgram(simjobPath, ["info", "--system", "--sgemm-seconds", "0.05"], environment: environment)
        #expect(unwritable.status == 0, "\(unwritable.stderr)")
        #expect(GEMMCalibration.cacheKey.count >= 8)
    }
}
