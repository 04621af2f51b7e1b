import Foundation
import Testing
@testable import SimjobOperations
import SimjobHDF5

/// The HNSW index built from the k-NN graph: its search, hnswlib loading its export, and
/// damaged or mismatched inputs.
@Suite("HNSW from the k-NN graph")
struct HNSWTests {
    /// The small set with ground truth (`writeSmallSet`).
    func makeData(_ path: String, metric: String) throws {
        try writeSmallSet(path, metric: metric, clusters: 0, seed: 21)
    }

    @Test("hnswlib and FAISS (IndexHNSWFlat) load the exports and return simjob's neighbours; recall rises with ef", arguments: ["euclidean", "angular", "ip"])
    func exportedToHnswlib(metric: String) throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("hnsw.hdf5"), exported = folder.file("hnsw.bin")
        try makeData(data, metric: metric)
        let trained = try simjob("train", data, "--type", "hnsw", "--m", "8", "--output", index, "--quiet")
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(try simjob("export", index, "--format", "hnswlib", "--output", exported).status == 0)
        let faissFile = folder.file("hnsw.faiss")
        #expect(try simjob("export", index, "--format", "faiss", "--output", faissFile).status == 0)
        var recalls: [Double] = []
        for ef in ["10", "64"] {
            let result = folder.file("s\(ef).hdf5")
            #expect(try simjob("search", index, "--queries", data, "--k", "10", "--ef", ef, "--output", result, "--quiet").status == 0)
            let line = try python("""
                import sys, hnswlib, h5py, numpy as np
                data, exported, result, space, ef = sys.argv[1:6]
                f = h5py.File(data, "r"); q, truth = f["test"][:], f["neighbors"][:]
                p = hnswlib.Index(space=space, dim=q.shape[1]); p.load_index(exported); p.set_ef(int(ef))
                I, D = p.knn_query(q, k=10)
                s = h5py.File(result, "r")["search"]; sI, sD = s["neighbors"][:], s["distances"][:].astype("f8")
                conv = {"l2": sD ** 2, "cosine": sD, "ip": 1 + sD}[space]
                assert np.allclose(conv, D, rtol=1e-4, atol=1e-4), float(np.abs(conv - D).max())
                print((I == sI).all(1).mean(), np.mean([len(set(a) & set(b)) / 10 for a, b in zip(sI, truth)]))
                """, data, exported, result, ["euclidean": "l2", "angular": "cosine", "ip": "ip"][metric]!, ef)
            let values = line.split(separator: " ").compactMap { Double($0) }
            #expect(values.count == 2 && values[0] >= 0.99, "ef \(ef): identical lists \(values)")
            let faissSame = try python("""
                import sys, faiss, h5py, numpy as np
                data, exported, result, ef = sys.argv[1:5]
                index = faiss.read_index(exported)
                faiss.ParameterSpace().set_index_parameter(index, "efSearch", int(ef))
                D, I = index.search(h5py.File(data, "r")["test"][:], 10)
                print((I == h5py.File(result, "r")["search/neighbors"][:]).all(1).mean())
                """, data, faissFile, result, ef)
            #expect((Double(faissSame) ?? 0) >= 0.95, "ef \(ef): FAISS's lists identical for \(faissSame)")
            recalls.append(values.last ?? 0)
        }
        #expect(recalls[1] >= 0.95 && recalls[1] >= recalls[0], "recall at ef 10 and 64: \(recalls)")
    }

    @Test("a given k-NN graph feeds the base layer; evaluate sweeps ef; mismatched and damaged inputs are refused in one line")
    func graphEvaluateAndRefusals() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), graph = folder.file("graph.hdf5"), index = folder.file("hnsw.hdf5")
        try makeData(data, metric: "euclidean")
        #expect(try simjob("knn-graph", data, "--k", "20", "--method", "approx", "--output", graph, "--quiet").status == 0)
        let trained = try simjob("train", data, "--type", "hnsw", "--m", "8", "--graph", graph, "--output", index, "--quiet")
        #expect(trained.status == 0, "\(trained.stderr)")
        let report = folder.file("report.hdf5")
        let evaluated = try simjob("evaluate", data, "--index", index, "--k", "10", "--param", "ef=10,80", "--runs", "1", "--latency-queries", "0",
                                   "--output", report, "--quiet")
        #expect(evaluated.status == 0, "\(evaluated.stderr)")
        let rows = try python("""
            import sys, h5py
            g = h5py.File(sys.argv[1], "r")["evaluation"]; print([int(e) for e in g["ef"][:]], [round(float(r), 4) for r in g["recall"][:]])
            """, report)
        #expect(rows.hasPrefix("[10, 80]"), "\(rows)")
        let recall80 = Double(rows.split(separator: "[").last?.split(separator: ",").last?.trimmingCharacters(in: CharacterSet(charactersIn: " ]")) ?? "") ?? 0
        #expect(recall80 >= 0.95, "\(rows)")

        // A graph of other vectors, a damaged index, an IVF index without nprobe, a bad --param.
        let other = folder.file("other.hdf5"), otherGraph = folder.file("other-graph.hdf5")
        try python("import sys, h5py, numpy as np\nwith h5py.File(sys.argv[1], 'w') as f: f['train'] = np.random.default_rng(3).standard_normal((500, 16)).astype('f4'); f.attrs['distance'] = 'euclidean'", other)
        #expect(try simjob("knn-graph", other, "--k", "5", "--output", otherGraph, "--quiet").status == 0)
        try expectOneLineError(["train", data, "--type", "hnsw", "--graph", otherGraph, "--output", folder.file("x.hdf5"), "--quiet"], mentions: [otherGraph, "3000 rows"])
        let damaged = folder.file("damaged.hdf5")
        try FileManager.default.copyItem(atPath: index, toPath: damaged)
        try python("import sys, h5py\nwith h5py.File(sys.argv[1], 'r+') as f:\n    b = f['index/base_links'][:]; b[5, 0] = 99999; f['index/base_links'][:] = b", damaged)
        try expectOneLineError(["search", damaged, "--queries", data, "--k", "10", "--ef", "20", "--output", folder.file("s.hdf5"), "--quiet"],
                               mentions: [damaged, "base_links", "99999"])
        try expectOneLineError(["export", damaged, "--format", "hnswlib", "--output", folder.file("d.bin")], mentions: ["base_links"])
        let ivf = folder.file("ivf.hdf5")
        #expect(try simjob("train", data, "--type", "ivfflat", "--nlist", "8", "--output", ivf, "--quiet").status == 0)
        try expectOneLineError(["search", ivf, "--queries", data, "--k", "10", "--output", folder.file("s.hdf5"), "--quiet"], mentions: ["--nprobe"])
        try expectOneLineError(["evaluate", data, "--index", index, "--param", "speed=1", "--output", folder.file("r2.hdf5"), "--quiet"], mentions: ["speed"])
        #expect(!FileManager.default.fileExists(atPath: folder.file("s.hdf5")) && !FileManager.default.fileExists(atPath: folder.file("d.bin")))
    }
}
