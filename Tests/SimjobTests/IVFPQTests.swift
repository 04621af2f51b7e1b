import Foundation
import Testing
@testable import SimjobAlgorithms
@testable import SimjobOperations
import SimjobHDF5
import SimjobKernels

@Suite("Product quantization and IVF-PQ")
struct IVFPQTests {
    @Test("PQ reconstruction error falls as M grows")
    func reconstructionFallsWithM() throws {
        let data = mixture(clusters: 20, perCluster: 100, dimension: 16, seed: 21)
        var template = KMeansConfig(k: 16)
        template.iterations = 15
        let errors = try [1, 2, 4, 8, 16].map { m in
            try ProductQuantizer.train(data, m: m, nbits: 4, kmeans: template).0.reconstructionError(data, threads: 2)
        }
        for (fewer, more) in zip(errors, errors.dropFirst()) { #expect(more < fewer, "\(errors)") }
        #expect(errors.allSatisfy { $0.isFinite && $0 >= 0 })
    }

    @Test("PQ codes decode to the nearest sub-centroids")
    func encodeDecode() throws {
        let data = mixture(clusters: 10, perCluster: 60, dimension: 8, seed: 22)
        var template = KMeansConfig(k: 16)
        template.iterations = 10
        let (pq, _) = try ProductQuantizer.train(data, m: 4, nbits: 4, kmeans: template)
        var codes = [UInt8](repeating: 0, count: data.rows * 4)
        try pq.encode(data.pointer, rows: data.rows, into: &codes, threads: 2)
        for row in 0..<data.rows {
            for s in 0..<4 {
                var best = Float.infinity, bestIndex = 0
                for j in 0..<16 {
                    let distance = VectorKernels.squaredDistance(data.row(row) + s * 2, pq.codebooks.row(s * 16 + j), count: 2)
                    if distance < best { best = distance; bestIndex = j }
                }
                #expect(Int(codes[row * 4 + s]) == bestIndex, "row \(row) sub-quantizer \(s)")
            }
        }
    }

    /// Writes an h5py-free dataset through simjob's own writer.
    func writeDataset(_ data: FloatMatrix, queries: FloatMatrix, metric: Metric, to path: String) throws {
        let out = try AtomicOutputFile(path)
        try out.file.write("train", data.array, shape: [data.rows, data.columns])
        try out.file.write("test", queries.array, shape: [queries.rows, queries.columns])
        try out.file.setAttribute("distance", .string(metric.rawValue))
        try out.commit()
    }

    @Test("nprobe = nlist with full refinement equals exact search", arguments: Metric.allCases)
    func fullSearchIsExact(metric: Metric) throws {
        let folder = TemporaryFolder()
        let data = mixture(clusters: 8, perCluster: 60, dimension: 12, seed: 23)
        let queries = mixture(clusters: 8, perCluster: 5, dimension: 12, seed: 24)
        let path = folder.file("data.hdf5")
        try writeDataset(data, queries: queries, metric: metric, to: path)
        var config = IVFPQConfig(nlist: 8, m: 4, nbits: 4)
        config.threads = 2
        let source = try VectorSource(DatasetReference(path: path, dataset: "train"))
        let (index, _) = try IVFPQIndex.train(source, metric: try source.resolveMetric(config.metric), config: config)
        #expect(index.count == 480)
        #expect(Set(index.ids) == Set((0..<480).map(Int32.init)))
        let base = try source.readMatrix(0..<480, metric: metric)
        // refine * k = 480 candidates: every vector is re-ranked exactly.
        let (table, stats) = try index.search(queries, config: IVFPQSearchConfig(k: 6, nprobe: 8, refine: 80), base: base)
        #expect(stats.codesScanned == 480 * 40)
        var exactConfig = ExactKNNConfig(k: 6, threads: 2)
        exactConfig.block = 64
        var engine = ExactKNN(config: exactConfig)
        engine.progressStyle = .silent
        let (exact, _) = try engine.search(queries: queries, base: data, metric: metric)
        #expect(table.idArray == exact.idArray)
        for (got, expected) in zip(table.distanceArray, exact.distanceArray) {
            #expect(abs(got - expected) <= 1e-5 * max(1, abs(expected)))
        }
    }

    @Test("recall rises with nprobe and with refinement")
    func recallRises() throws {
        let folder = TemporaryFolder()
        let data = mixture(clusters: 40, perCluster: 50, dimension: 16, seed: 25)
        let queries = mixture(clusters: 40, perCluster: 2, dimension: 16, seed: 26)
        let path = folder.file("data.hdf5")
        try writeDataset(data, queries: queries, metric: .euclidean, to: path)
        let source = try VectorSource(DatasetReference(path: path, dataset: "train"))
        let (index, stats) = try IVFPQIndex.train(source, metric: try source.resolveMetric(nil), config: IVFPQConfig(nlist: 32, m: 8, nbits: 6))
        #expect(stats.listImbalance >= 1)
        var engine = ExactKNN(config: ExactKNNConfig(k: 10))
        engine.progressStyle = .silent
        let (truth, _) = try engine.search(queries: queries, base: data, metric: .euclidean)
        func recall(_ table: NeighborTable) -> Double {
            var hits = 0
            for row in 0..<table.rows { hits += Set(table.ids(ofRow: row)).intersection(truth.ids(ofRow: row)).count }
            return Double(hits) / Double(table.rows * 10)
        }
        let base = try source.readMatrix(0..<data.rows)
        let recalls = try [1, 4, 16, 32].map { try recall(index.search(queries, config: IVFPQSearchConfig(k: 10, nprobe: $0)).0) }
        for (fewer, more) in zip(recalls, recalls.dropFirst()) { #expect(more >= fewer, "\(recalls)") }
        let refined = try recall(index.search(queries, config: IVFPQSearchConfig(k: 10, nprobe: 32, refine: 10), base: base).0)
        #expect(refined > recalls.last!, "refined \(refined) vs \(recalls)")
        #expect(refined > 0.9)
    }

    @Test("an index saved, loaded in a new process and searched returns identical results")
    func saveLoadSearch() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("index.hdf5")
        #expect(try simjob("generate", data, "--n", "3000", "--queries", "50", "--dim", "16", "--k", "10", "--quiet").status == 0)
        let trained = try simjob("train", data, "--nlist", "16", "--m", "4", "--output", index, "--quiet")
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(trained.stdout.contains("IVF-PQ nlist=16 m=4"), "\(trained.stdout)")
        let first = folder.file("first.hdf5"), second = folder.file("second.hdf5")
        for (output, extra) in [(first, [String]()), (second, [String]())] {
            let result = try simjob(["search", index, "--queries", data, "--k", "10", "--nprobe", "4", "--refine", "5", "--output", output, "--quiet"] + extra)
            #expect(result.status == 0, "\(result.stderr)")
        }
        // And in this process, from the loaded index.
        let loaded = try QuantizationOperations.loadIndex(index)
        let queries = try VectorSource(DatasetReference(path: data, dataset: "test")).readMatrix(0..<50)
        let base = try QuantizationOperations.baseVectors(for: loaded, base: nil)
        let (table, _) = try loaded.search(queries, config: IVFPQSearchConfig(k: 10, nprobe: 4, refine: 5), base: base)
        let firstFile = try HDF5File.open(first), secondFile = try HDF5File.open(second)
        let ids = try firstFile.dataset("search/neighbors").readAll(as: Int32.self)
        #expect(ids == (try secondFile.dataset("search/neighbors").readAll(as: Int32.self)))
        #expect((try firstFile.dataset("search/distances").readAll(as: Float.self)) == (try secondFile.dataset("search/distances").readAll(as: Float.self)))
        #expect(ids == table.idArray)
        let report = try python("""
            import sys, h5py, numpy as np
            idx = h5py.File(sys.argv[1], "r")["index"]; res = h5py.File(sys.argv[2], "r")["search"]
            data = h5py.File(sys.argv[3], "r")
            offsets = idx["list_offsets"][:]
            ok = [idx.attrs["type"] == "IVFPQ", int(idx.attrs["nlist"]) == 16, int(idx.attrs["m"]) == 4,
                  idx["codes"].shape == (3000, 4), idx["codes"].dtype == np.uint8,
                  sorted(idx["ids"][:].tolist()) == list(range(3000)), offsets[0] == 0 and offsets[-1] == 3000,
                  res["neighbors"].shape == (50, 10) and res["neighbors"].dtype == np.int32,
                  int(res.attrs["nprobe"]) == 4]
            truth = data["neighbors"][:, :10]
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(res["neighbors"][:], truth)])
            print(all(ok), recall > 0.5)
            """, index, first, data)
        #expect(report == "True True")
    }

    @Test("bad IVF-PQ parameters get clear errors")
    func badParameters() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("index.hdf5")
        #expect(try simjob("generate", data, "--n", "500", "--queries", "5", "--dim", "12", "--k", "0", "--quiet").status == 0)
        let cases: [([String], String)] = [
            (["train", data, "--nlist", "8", "--m", "5", "--output", index], "m = 5 must divide the dimension 12"),
            (["train", data, "--nlist", "600", "--m", "4", "--output", index], "nlist = 600"),
            (["train", data, "--nlist", "8", "--m", "4", "--nbits", "9", "--output", index], "--nbits must be between 1 and 8 (got 9)"),
            (["search", data, "--queries", data, "--k", "5", "--nprobe", "2", "--output", index], "no index group"),
        ]
        for (arguments, fragment) in cases {
            let result = try simjob(arguments + ["--quiet"])
            #expect(result.status != 0 && result.stderr.contains(fragment), "\(arguments): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: index))
        #expect(try simjob("train", data, "--nlist", "8", "--m", "4", "--output", index, "--quiet").status == 0)
        let tooMany = try simjob("search", index, "--queries", data, "--k", "501", "--nprobe", "2", "--output", folder.file("s.hdf5"))
        #expect(tooMany.status == 1 && tooMany.stderr.contains("k = 501"))
    }
}
