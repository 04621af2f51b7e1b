import Foundation
import Testing
import SimjobHDF5

/// The commands end to end, checked against numpy and h5py.
@Suite("Commands")
struct CommandTests {
    /// ann-benchmarks' k-nn recall (a returned neighbour counts when its true distance is at
    /// most the k-th true distance + 1e-3) and id agreement away from ties, from numpy.
    static let compareWithNumpy = """
        import sys, h5py, numpy as np
        path, k = sys.argv[1], int(sys.argv[2])
        f = h5py.File(path, "r")
        metric = f.attrs["distance"]
        x, q = f["train"][:].astype("f8"), f["test"][:].astype("f8")
        if metric == "angular":
            nx = np.linalg.norm(x, axis=1, keepdims=True); nq = np.linalg.norm(q, axis=1, keepdims=True)
            d = 1 - (q / nq) @ (x / nx).T
        elif metric == "ip":
            d = -(q @ x.T)
        else:
            d = np.sqrt(np.maximum((q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2 * q @ x.T, 0))
        order = np.lexsort((np.broadcast_to(np.arange(x.shape[0]), d.shape), d), axis=1)[:, :k + 1]
        true = np.take_along_axis(d, order, 1)
        ids = f["neighbors"][:, :k]
        got = np.take_along_axis(d, ids.astype("i8"), 1)
        recall = np.mean((got <= true[:, k - 1:k] + 1e-3).sum(1) / k)
        # positions whose true distance is not tied (within 1e-5) with a neighbour position
        gap_before = np.concatenate([np.full((d.shape[0], 1), np.inf), np.diff(true, axis=1)], 1)[:, :k]
        gap_after = np.diff(true, axis=1)[:, :k]
        untied = (np.abs(gap_before) > 1e-5) & (np.abs(gap_after) > 1e-5)
        agree = np.mean((ids == order[:, :k])[untied])
        dist_err = np.abs(f["distances"][:, :k] - true[:, :k]).max()
        print(f"{recall:.6f} {agree:.6f} {dist_err:.2e} {ids.dtype} {f['distances'].dtype}")
        """

    @Test("groundtruth matches numpy to the tie, for every metric", arguments: ["euclidean", "angular", "ip"])
    func groundTruthMatchesNumpy(metric: String) throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), truth = folder.file("truth.hdf5")
        let generated = try simjob("generate", data, "--n", "3000", "--queries", "100", "--dim", "24", "--metric", metric,
                                   "--clusters", "10", "--duplicates", "0.05", "--k", "0", "--quiet")
        #expect(generated.status == 0, "\(generated.stderr)")
        let result = try simjob("groundtruth", data, "--k", "20", "--output", truth, "--quiet", "--block", "256")
        #expect(result.status == 0, "\(result.stderr)")
        let fields = try python(Self.compareWithNumpy, truth, "20").split(separator: " ")
        #expect(fields.count == 5)
        #expect(fields.first == "1.000000", "ann-benchmarks recall: \(fields)")
        #expect(fields.dropFirst().first == "1.000000", "id agreement away from ties: \(fields)")
        #expect(Double(fields[2])! < 1e-4, "distance error \(fields[2])")
        #expect(fields[3] == "int32" && fields[4] == "float32")
        // Streaming the base through a small memory limit gives the same file contents.
        let streamed = folder.file("streamed.hdf5")
        let small = try simjob("groundtruth", data, "--k", "20", "--output", streamed, "--quiet", "--block", "256", "--memory-limit", "60K")
        #expect(small.status == 0 && small.stdout.contains("streamed in"), "\(small.stdout) \(small.stderr)")
        for name in ["neighbors", "distances"] {
            let a = try HDF5File.open(truth).dataset(name).readAll(as: Float.self)
            let b = try HDF5File.open(streamed).dataset(name).readAll(as: Float.self)
            #expect(a == b, "\(name) differs when streamed")
        }
        // A complete ann-benchmarks dataset: train and test copied, attribute kept.
        let file = try HDF5File.open(truth)
        #expect(Set(file.datasetPaths()) == ["train", "test", "neighbors", "distances", "dup_group"])
        #expect(try file.attribute("distance")?.stringValue == metric)
    }

    @Test("generate is deterministic, plants its duplicates, and writes correct ground truth")
    func generate() throws {
        let folder = TemporaryFolder()
        let a = folder.file("a.hdf5"), b = folder.file("b.hdf5"), c = folder.file("c.hdf5")
        #expect(try simjob("generate", a, "--n", "2000", "--queries", "50", "--dim", "16", "--duplicates", "0.1", "--seed", "7", "--k", "10", "--quiet", "--threads", "1").status == 0)
        #expect(try simjob("generate", b, "--n", "2000", "--queries", "50", "--dim", "16", "--duplicates", "0.1", "--seed", "7", "--k", "10", "--quiet", "--threads", "2").status == 0)
        #expect(try simjob("generate", c, "--n", "2000", "--queries", "50", "--dim", "16", "--duplicates", "0.1", "--seed", "8", "--k", "10", "--quiet").status == 0)
        let report = try python("""
            import sys, h5py, numpy as np
            a, b, c = (h5py.File(p, "r") for p in sys.argv[1:4])
            same = all(np.array_equal(a[n][:], b[n][:]) for n in ["train", "test", "neighbors", "distances", "dup_group"])
            differs = not np.array_equal(a["train"][:], c["train"][:])
            x, g = a["train"][:], a["dup_group"][:]
            planted = int((g >= 0).sum()) - len(np.unique(g[g >= 0]))  # copies, not their sources
            # every planted group's members are far closer to each other than to anything else
            groups_ok = True
            for gid in np.unique(g[g >= 0]):
                members = np.where(g == gid)[0]
                inner = max(np.linalg.norm(x[i] - x[j]) for i in members for j in members)
                others = np.delete(np.arange(len(x)), members)
                outer = np.linalg.norm(x[others] - x[members[0]], axis=1).min()
                groups_ok &= inner < 0.2 * outer
            print(same, differs, planted, groups_ok, a.attrs["distance"], a["neighbors"].shape)
            """, a, b, c)
        #expect(report == "True True 200 True euclidean (50, 10)")
        let fields = try python(Self.compareWithNumpy, a, "10").split(separator: " ")
        #expect(fields.prefix(2) == ["1.000000", "1.000000"], "\(fields)")
    }

    @Test("the k-NN graph agrees with numpy, streamed or not, and is symmetric in its distances")
    func knnGraph() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        #expect(try simjob("generate", data, "--n", "2500", "--queries", "1", "--dim", "20", "--duplicates", "0.04", "--k", "0", "--quiet").status == 0)
        let whole = folder.file("whole.hdf5"), streamed = folder.file("streamed.hdf5")
        let first = try simjob("knn-graph", data, "--k", "8", "--output", whole, "--quiet", "--block", "256")
        #expect(first.status == 0, "\(first.stderr)")
        // 70 KiB of vectors at a time: chunks of about 900 rows, read again and again.
        let second = try simjob("knn-graph", data + ":train", "--k", "8", "--output", streamed, "--quiet", "--block", "256", "--memory-limit", "140K")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("streamed in"), "\(second.stdout)")
        let report = try python("""
            import sys, h5py, numpy as np
            d = h5py.File(sys.argv[1], "r"); w = h5py.File(sys.argv[2], "r"); s = h5py.File(sys.argv[3], "r")
            x = d["train"][:].astype("f8")
            dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)); np.fill_diagonal(dist, np.inf)
            order = np.lexsort((np.broadcast_to(np.arange(len(x)), dist.shape), dist), axis=1)[:, :8]
            ids, ds = w["knn_graph/neighbors"][:], w["knn_graph/distances"][:]
            same = np.array_equal(ids, s["knn_graph/neighbors"][:]) and np.array_equal(ds, s["knn_graph/distances"][:])
            no_self = not (ids == np.arange(len(x))[:, None]).any()
            agree = np.mean(ids == order)
            err = np.abs(ds - np.take_along_axis(dist, order, 1)).max()
            g = w["knn_graph"]
            print(same, no_self, f"{agree:.4f}", err < 1e-4, g.attrs["metric"], int(g.attrs["k"]), g.attrs["method"], ids.dtype, ds.dtype)
            """, data, whole, streamed)
        #expect(report == "True True 1.0000 True euclidean 8 exact int32 float32")
    }

    @Test("Ctrl-C stops at a block boundary and leaves no output")
    func interrupt() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), out = folder.file("graph.hdf5")
        #expect(try simjob("generate", data, "--n", "40000", "--queries", "1", "--dim", "32", "--k", "0", "--quiet").status == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: simjobPath)
        process.arguments = ["knn-graph", data, "--k", "10", "--output", out, "--quiet", "--block", "256"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Interrupted once it is computing: its temporary output exists.
        let computing = waitFor(timeout: 60) { folder.contents.contains { $0.contains(".simjob-partial-") } }
        #expect(computing, "the command never started writing")
        #expect(process.isRunning, "the run finished before it could be interrupted; make the set larger")
        let interrupted = Date()
        process.interrupt()
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        #expect(Date().timeIntervalSince(interrupted) < 10)
        #expect(folder.contents == ["data.hdf5"], "left behind: \(folder.contents)")
    }

    /// 256 MiB here keeps the suite light on disk and time; Benchmarks/streaming_read_memory.py
    /// runs the same check on 1 GiB (and more).
    @Test("reading is streamed: a 256 MiB dataset is checked in far less memory")
    func streamingReadMemory() throws {
        let folder = TemporaryFolder()
        let path = folder.file("big.hdf5")
        // 524,288 x 128 float32 = 256 MiB, written in 64 MiB slices.
        try python("""
            import sys, h5py, numpy as np
            rows, dim, step = 524288, 128, 131072
            with h5py.File(sys.argv[1], "w") as f:
                d = f.create_dataset("train", (rows, dim), dtype="f4")
                rng = np.random.default_rng(1)
                for start in range(0, rows, step):
                    d[start:start + step] = rng.standard_normal((step, dim), dtype="f4")
                f.attrs["distance"] = "euclidean"
            """, path)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        #expect(size >= 256 << 20)
        let result = try simjob("info", path, "--check", "--block-rows", "32768")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("check train: 524288 rows finite"), "\(result.stdout)")
        // The peak is the kernel's high-water mark of the simjob process (VmHWM, read from
        // /proc by the process itself after it finished reading). A wait4 rusage from here would
        // also count this test process's memory: posix_spawn borrows it until exec.
        let peak = result.stdout.split(separator: "peak_rss_bytes=").last.flatMap { Int($0.prefix { $0.isNumber }) } ?? Int.max
        // Blocks of 16 MiB; the process itself (runtime, HDF5, BLAS) is about 35 MiB.
        #expect(peak < 100 << 20, "peak \(peak >> 20) MiB while reading a 256 MiB dataset")
        #expect(peak > 16 << 20, "implausibly small peak \(peak)")
    }
}
