import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import SimjobAlgorithms
@testable import SimjobOperations
import SimjobHDF5

@Suite("Evaluation")
struct EvaluationTests {
    @Test("recall follows ann-benchmarks' formula: repeated ids, missing rows and ties, by hand")
    func recallByHand() {
        // Two queries, k = 3, ground truth 4 wide.
        // Query 0: true distances 1, 2, 3, 3 (a tie at the k-th place); ids 10, 11, 12, 13.
        //   Returned 13 (distance 3: within 3 + 1e-3, counts although not among the first 3 true
        //   ids), 10 (1), and 10 again (a repeat: a miss). k-nn hits 2; id hits 1 (10 only).
        //   Epsilon threshold 3 * 1.01 = 3.03: the same 2 hits.
        // Query 1: true distances 1, 1.5, 2; returned nothing (-1 everywhere, a missing row).
        let scores = Recall.score(
            resultIDs: [13, 10, 10, -1, -1, -1],
            resultDistances: [3, 1, 1, .infinity, .infinity, .infinity],
            truthIDs: [10, 11, 12, 13, 20, 21, 22, 23],
            truthDistances: [1, 2, 3, 3, 1, 1.5, 2, 4],
            queries: 2, k: 3, truthWidth: 4)
        #expect(scores.perQuery == [2.0 / 3, 0])
        #expect(abs(scores.knn - 1.0 / 3) < 1e-12)
        #expect(abs(scores.epsilon - 1.0 / 3) < 1e-12)
        #expect(abs(scores.ids - 1.0 / 6) < 1e-12)
        // A distance just inside 3 + 1e-3 counts for k-nn recall but not inside 1 %: threshold
        // 2 + 1e-3 = 2.001 vs 2 * 1.01 = 2.02: 2.0005 counts for both, 2.01 only for epsilon.
        let edge = Recall.score(
            resultIDs: [1, 2], resultDistances: [2.0005, 2.01], truthIDs: [5, 6], truthDistances: [1, 2],
            queries: 1, k: 2, truthWidth: 2)
        #expect(edge.knn == 0.5 && edge.epsilon == 1 && edge.ids == 0)
    }

    @Test("the Pareto frontier keeps exactly the undominated settings")
    func pareto() {
        let frontier = Pareto.frontier(recall: [0.5, 0.6, 0.6, 0.9, 0.8, 1.0], qps: [100, 90, 80, 50, 40, 10])
        #expect(frontier == [true, true, false, true, false, true])
    }

    @Test("an evaluation sweep: exact search scores 1.0, report, ann-benchmarks files and plot hold together")
    func sweep() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("index.hdf5"), report = folder.file("report.hdf5")
        let results = folder.file("results")
        #expect(try simjob("generate", data, "--n", "4000", "--queries", "60", "--dim", "16", "--latent-dim", "4", "--k", "20", "--quiet").status == 0)
        #expect(try simjob("train", data, "--nlist", "16", "--m", "4", "--output", index, "--quiet").status == 0)
        let run = try simjob("evaluate", data, "--index", index, "--k", "10", "--nprobe", "1,4,16", "--refine", "0,5", "--exact",
                             "--output", report, "--ann-benchmarks-results", results, "--runs", "2", "--latency-queries", "20", "--quiet")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("pareto") && run.stdout.contains("exact"), "\(run.stdout)")
        let checks = try python("""
            import sys, os, glob, json, h5py, numpy as np
            report, results, data = sys.argv[1], sys.argv[2], sys.argv[3]
            e = h5py.File(report, "r")["evaluation"]
            out = {}
            out["rows"] = len(e["recall"])
            algos = list(e.attrs["algorithm"])
            exact = algos.index("simjob-exact")
            out["exact_recall"] = float(e["recall"][exact])
            out["recall_rises"] = bool(all(np.diff(e["recall"][:3]) >= 0))
            out["refine_helps"] = bool(e["recall"][5] >= e["recall"][2])
            out["latency"] = bool(np.all(e["p50_ms"][:6] > 0) and np.all(e["p99_ms"][:6] >= e["p50_ms"][:6]))
            out["attrs"] = sorted(k for k in e.attrs.keys() if k in ("build_seconds", "index_size_bytes", "k"))
            files = sorted(glob.glob(os.path.join(results, "data", "10", "*", "*.hdf5")))
            out["files"] = len(files)
            need_attrs = {"algo", "name", "dataset", "distance", "count", "run_count", "batch_mode", "best_search_time",
                          "build_time", "index_size", "candidates", "expect_extra"}
            ok = True
            truth = h5py.File(data, "r")
            x, q = truth["train"][:].astype("f8"), truth["test"][:].astype("f8")
            for path in files:
                f = h5py.File(path, "r")
                ok &= need_attrs <= set(f.attrs.keys())
                ok &= f["times"].shape == (60,) and f["times"].dtype == np.float32
                ok &= f["neighbors"].shape == (60, 10) and f["neighbors"].dtype == np.int32
                ok &= f["distances"].shape == (60, 10) and f["distances"].dtype == np.float32
                ok &= int(f.attrs["count"]) == 10 and f.attrs["dataset"] == "data" and f.attrs["distance"] == "euclidean"
                ok &= bool(f.attrs["batch_mode"])
                # stored distances are the true distances of the stored neighbours
                ids = f["neighbors"][:]
                d = np.linalg.norm(q[:, None, :] - x[ids], axis=2)
                ok &= bool(np.allclose(d, f["distances"][:], atol=1e-4))
                # ann-benchmarks' k-nn recall recomputed here matches the report's row
                thr = truth["distances"][:, 9:10] + 1e-3
                recall = float(np.mean((f["distances"][:] <= thr).sum(1) / 10))
                name = os.path.basename(path)
                row = exact if name == "exact.hdf5" else [i for i in range(len(algos)) if
                      f"nprobe_{int(e['nprobe'][i])}_refine_{int(e['refine'][i])}.hdf5" == name and algos[i] != "simjob-exact"][0]
                ok &= abs(recall - float(e["recall"][row])) < 1e-9
                # best_search_time is seconds per query: its inverse is the row's queries per second
                ok &= abs(1 / f.attrs["best_search_time"] - e["qps"][row]) <= 1e-6 * e["qps"][row]
            out["files_ok"] = bool(ok)
            print(json.dumps(out, sort_keys=True))
            """, report, results, data)
        #expect(checks == #"{"attrs": ["build_seconds", "index_size_bytes", "k"], "exact_recall": 1.0, "files": 7, "files_ok": true, "latency": true, "recall_rises": true, "refine_helps": true, "rows": 7}"#)

        // The plot: axes, labels, one line per configuration, Pareto points ringed.
        let svg = try String(contentsOfFile: folder.file("report.svg"), encoding: .utf8)
        let document = try XMLDocument(data: Data(svg.utf8))
        func nodes(_ xpath: String) throws -> [XMLNode] { try document.nodes(forXPath: xpath) }
        #expect(try nodes("//*[local-name()='line'][@id='x-axis']").count == 1)
        #expect(try nodes("//*[local-name()='line'][@id='y-axis']").count == 1)
        #expect(try nodes("//*[local-name()='text'][@id='x-label']").first?.stringValue?.contains("Recall") == true)
        #expect(try nodes("//*[local-name()='text'][@id='y-label']").first?.stringValue?.contains("Queries per second") == true)
        let series = try nodes("//*[local-name()='path'][@class='series']/@data-name").compactMap(\.stringValue)
        #expect(series == ["IVF-PQ", "IVF-PQ, refine 5", "exact search"])
        #expect(try nodes("//*[local-name()='circle'][@class='point']").count == 7)
        let paretoRows = try HDF5File.open(report).dataset("evaluation/pareto").readAll(as: UInt8.self).filter { $0 == 1 }.count
        #expect(try nodes("//*[local-name()='circle'][@class='pareto']").count == paretoRows)
        #expect(paretoRows >= 1)
    }

    @Test("graph recall: 1.0 against itself, and by hand for a damaged copy")
    func graphRecall() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), truth = folder.file("truth.hdf5"), damaged = folder.file("damaged.hdf5")
        #expect(try simjob("generate", data, "--n", "400", "--queries", "1", "--dim", "8", "--k", "0", "--quiet").status == 0)
        #expect(try simjob("knn-graph", data, "--k", "5", "--output", truth, "--quiet").status == 0)
        let same = try simjob("evaluate", "--graph", truth, "--truth", truth)
        #expect(same.status == 0 && same.stdout.contains("recall 1.0000"), "\(same.stdout) \(same.stderr)")
        // Damage: in every 4th row, replace the last neighbour with a far row, and repeat the
        // first neighbour in place of the second. Such a row keeps 3 of 5 (k-nn recall 0.6).
        try python("""
            import sys, h5py, numpy as np
            src, dst = sys.argv[1], sys.argv[2]
            with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
                ids = f["knn_graph/neighbors"][:]
                x = h5py.File(sys.argv[3], "r")["train"][:]
                for r in range(0, len(ids), 4):
                    far = int(np.argmax(np.linalg.norm(x - x[r], axis=1)))
                    ids[r, 4] = far
                    ids[r, 1] = ids[r, 0]
                g["knn_graph/neighbors"] = ids
                g["knn_graph/distances"] = f["knn_graph/distances"][:]
                for k, v in f["knn_graph"].attrs.items(): g["knn_graph"].attrs[k] = v
            """, truth, damaged, data)
        let result = try simjob("evaluate", "--graph", damaged, "--truth", truth)
        // 100 damaged rows at 0.6, 300 intact at 1.0: (100 * 0.6 + 300) / 400 = 0.9.
        #expect(result.status == 0 && result.stdout.contains("recall 0.9000"), "\(result.stdout) \(result.stderr)")
        let sampled = try simjob("evaluate", "--graph", truth, "--truth", truth, "--sample", "50")
        #expect(sampled.stdout.contains("50 of 400 rows"), "\(sampled.stdout)")
        // Without a truth file the sampled rows' exact neighbours are computed: the same 0.9
        // over every row, and 1.0 for the exact graph itself.
        let computed = try simjob("evaluate", "--graph", damaged, "--sample", "400", "--vectors", data)
        #expect(computed.status == 0 && computed.stdout.contains("recall 0.9000") && computed.stdout.contains("computed here"), "\(computed.stdout) \(computed.stderr)")
        let exactAgain = try simjob("evaluate", "--graph", truth, "--sample", "100")
        #expect(exactAgain.stdout.contains("100 of 400 rows") && exactAgain.stdout.contains("recall 1.0000"), "\(exactAgain.stdout) \(exactAgain.stderr)")
        let missing = try simjob("evaluate", "--graph", truth)
        #expect(missing.status != 0 && missing.stderr.contains("--sample"))
    }
}
