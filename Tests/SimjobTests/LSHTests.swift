import Foundation
import Testing
@testable import SimjobAlgorithms
import SimjobKernels

/// Multi-table LSH: the probe order, exactness when every bucket is probed, recall that can only
/// grow with probes, the file round trip, and careless inputs.
@Suite("LSH index")
struct LSHTests {
    /// The small set with ground truth (`writeSmallSet`).
    func makeData(_ path: String, metric: String) throws {
        try writeSmallSet(path, metric: metric, clusters: 30, seed: 5)
    }

    @Test("probes come out as every code once, own code first, by increasing sum of squared margins of the flipped bits")
    func probeOrder() {
        var rng = SeededGenerator(seed: 12)
        for trial in 0..<50 {
            let bits = 1 + trial % 7
            var margins = [Float](repeating: 0, count: bits)
            for bit in 0..<bits { margins[bit] = rng.nextUnitFloat() * 2 - 1 }
            let thresholds = [Float](repeating: 0, count: bits)
            let count = 1 << bits
            var codes = [UInt32](repeating: 0, count: count)
            var planner = ProbePlanner(bits: bits, capacity: count)
            let made = margins.withUnsafeBufferPointer { planner.plan(margins: $0.baseAddress!, thresholds: thresholds, offset: 0, count: count, into: &codes) }
            #expect(made == count && Set(codes).count == count, "trial \(trial): \(made) codes, \(Set(codes).count) distinct")
            let own = (0..<bits).reduce(UInt32(0)) { margins[$1] > 0 ? $0 | 1 << UInt32($1) : $0 }
            #expect(codes[0] == own)
            func score(_ code: UInt32) -> Float {
                (0..<bits).reduce(0) { (code ^ own) & (1 << UInt32($1)) != 0 ? $0 + margins[$1] * margins[$1] : $0 }
            }
            let scores = codes.map(score)
            #expect(zip(scores, scores.dropFirst()).allSatisfy { $0 <= $1 * (1 + 1e-5) + 1e-7 }, "trial \(trial): \(scores)")
        }
    }

    @Test("probing every bucket is exact search; recall never falls as probes grow; the sweep writes probes to its report and result files", arguments: ["euclidean", "angular", "ip"])
    func exactWhenEverythingIsProbed(metric: String) throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("lsh.hdf5")
        try makeData(data, metric: metric)
        let trained = try simjob("train", data, "--type", "lsh", "--tables", "4", "--hash-bits", "6", "--output", index, "--quiet")
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(trained.stdout.contains("LSH tables=4 bits=6"))
        // 64 probes of 6-bit codes visit every bucket of every table: the exact neighbours.
        var recalls: [Double] = []
        for probes in [1, 2, 4, 16, 64] {
            let out = folder.file("s\(probes).hdf5")
            let searched = try simjob("search", index, "--queries", data, "--k", "10", "--probes", "\(probes)", "--output", out, "--quiet")
            #expect(searched.status == 0, "\(searched.stderr)")
            recalls.append(try searchIDRecall(data, out))
        }
        #expect(zip(recalls, recalls.dropFirst()).allSatisfy { $0 <= $1 }, "recall by probes 1, 2, 4, 16, 64: \(recalls)")
        // The Hamming ranking (--refine R): nested candidate sets, so recall never falls with R;
        // R x k = every row is exact search.
        var ranked: [Double] = []
        for refine in [1, 3, 10, 300] {
            let out = folder.file("h\(refine).hdf5")
            let searched = try simjob("search", index, "--queries", data, "--k", "10", "--refine", "\(refine)", "--output", out, "--quiet")
            #expect(searched.status == 0, "\(searched.stderr)")
            ranked.append(try searchIDRecall(data, out))
        }
        #expect(zip(ranked, ranked.dropFirst()).allSatisfy { $0 <= $1 } && ranked.last! >= 0.999 && ranked.first! < ranked.last!, "recall by refine 1, 3, 10, 300: \(ranked)")
        #expect(recalls.last! >= 0.999, "every bucket probed: recall \(recalls.last!)")
        #expect(recalls.first! < recalls.last!, "one probe per table should miss some neighbours: \(recalls)")
        // The evaluation sweep over probes, its report and ann-benchmarks files.
        let report = folder.file("eval.hdf5")
        let evaluated = try simjob("evaluate", data, "--index", index, "--k", "10", "--param", "probes=1,64", "--runs", "1",
                                   "--latency-queries", "5", "--output", report, "--ann-benchmarks-results", folder.file("results"), "--quiet")
        #expect(evaluated.status == 0, "\(evaluated.stderr)")
        let columns = try python("""
            import sys, h5py
            e = h5py.File(sys.argv[1])["evaluation"]
            print([int(v) for v in e["probes"][:]], [round(float(r), 4) for r in e["recall"][:]])
            """, report)
        #expect(columns.hasPrefix("[1, 64] ["), "\(columns)")
        #expect(FileManager.default.fileExists(atPath: folder.file("results/data/10/simjob-lsh-batch/probes_64.hdf5")))
    }

    @Test("a job trains, sweeps and searches an LSH index; bad LSH keys are refused with their lines")
    func lshInAJob() throws {
        let folder = TemporaryFolder()
        let job = folder.file("lsh.yaml")
        try """
            output: \(folder.file("out"))
            steps:
              - name: data
                generate: {n: 3000, queries: 100, dim: 16, clusters: 20, k: 100, seed: 3}
              - name: index
                train: {input: data, type: lsh, tables: 8, hash_bits: 8}
              - name: sweep
                evaluate: {input: data, index: index, k: 10, probes: [1, 256], refine: [0, 20], latency_queries: 0, runs: 1}
              - name: query
                search: {index: index, input: data, k: 10, probes: 4}
              - name: ivfpq
                train: {input: data, nlist: 16, m: 4}
              - name: both
                evaluate: {input: data, index: [ivfpq, index], k: 10, nprobe: [1, 4], probes: [1, 8], latency_queries: 0, runs: 1}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let ran = try simjob("run", job, "--quiet")
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stdout.contains("LSH tables=8 bits=8") && ran.stdout.contains("probes=4"), "\(ran.stdout)")
        let report = try python("""
            import sys, h5py
            e = h5py.File(sys.argv[1])["evaluation"]
            print([int(v) for v in e["probes"][:]], [int(v) for v in e["refine"][:]], round(float(e["recall"][1]), 4))
            """, folder.file("out/sweep.hdf5"))
        // Every bucket probed (256 codes of 8 bits): exact.
        #expect(report.hasPrefix("[1, 256, 0] [0, 0, 20] 1.0"), "\(report)")
        // A list of indexes: one report holding both.
        let both = try python("""
            import sys, h5py
            e = h5py.File(sys.argv[1])["evaluation"]
            print(sorted(set(a.decode() if isinstance(a, bytes) else a for a in e.attrs["algorithm"])), len(e["recall"]))
            """, folder.file("out/both.hdf5"))
        #expect(both.hasPrefix("['simjob-ivfpq', 'simjob-lsh'] 4"), "\(both)")
        let bad = folder.file("bad.yaml")
        try """
            output: \(folder.file("out2"))
            steps:
              - name: data
                generate: {n: 500, queries: 20, dim: 8, k: 10}
              - name: index
                train: {input: data, type: lsh, tables: 0, hash_bits: 40}
              - name: sweep
                evaluate: {input: data, index: [index, nowhere.hdf5], k: 5}
              - name: empty
                evaluate: {input: data, index: [], k: 5}
            """.write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try simjob("validate", bad)
        #expect(refused.status != 0 && refused.stderr.contains("bad.yaml:6:") && refused.stderr.contains("train.tables")
                && refused.stderr.contains("train.hash_bits") && refused.stderr.contains("'nowhere.hdf5'")
                && refused.stderr.contains("evaluate.index: an empty list"), "\(refused.stderr)")
    }

    @Test("one evaluate over IVF-PQ, HNSW and LSH indexes: one report, a plot line per family and mode, one results tree; an index of other rows is refused")
    func oneSweepForAll() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        try makeData(data, metric: "euclidean")
        let ivfpq = folder.file("ivfpq.hdf5"), hnsw = folder.file("hnsw.hdf5"), lsh = folder.file("lsh.hdf5")
        #expect(try simjob("train", data, "--nlist", "16", "--m", "4", "--output", ivfpq, "--quiet").status == 0)
        #expect(try simjob("train", data, "--type", "hnsw", "--m", "8", "--output", hnsw, "--quiet").status == 0)
        #expect(try simjob("train", data, "--type", "lsh", "--tables", "4", "--hash-bits", "8", "--output", lsh, "--quiet").status == 0)
        let report = folder.file("all.hdf5"), results = folder.file("results")
        let swept = try simjob("evaluate", data, "--index", ivfpq, "--index", hnsw, "--index", lsh, "--k", "10", "--nprobe", "1,4",
                               "--ef", "16,32", "--probes", "1,8", "--refine", "0,5", "--runs", "1", "--latency-queries", "0", "--exact",
                               "--output", report, "--ann-benchmarks-results", results, "--quiet")
        #expect(swept.status == 0, "\(swept.stderr)")
        let summary = try python("""
            import sys, h5py
            e = h5py.File(sys.argv[1])["evaluation"]
            algorithms = [a.decode() if isinstance(a, bytes) else a for a in e.attrs["algorithm"]]
            print(sorted(set(algorithms)), len(algorithms), int((e["build_seconds"][:] > 0).sum()), int(e["pareto"][:].sum() > 0))
            """, report)
        // IVF-PQ: 2 nprobe x 2 refine; HNSW: 2 ef; LSH: 2 probes + 1 Hamming (refine 5); exact once.
        #expect(summary.hasPrefix("['simjob-exact', 'simjob-hnsw', 'simjob-ivfpq', 'simjob-lsh'] 10 9 1"), "\(summary)")
        let svg = try String(contentsOfFile: folder.file("all.svg"), encoding: .utf8)
        for line in ["IVFPQ(nlist=16,m=4,nbits=8)\"", "IVFPQ(nlist=16,m=4,nbits=8), refine 5", "HNSW(m=8)", "LSH(tables=4,bits=8), multi-probe",
                     "LSH(tables=4,bits=8), Hamming ranking", "exact search"] {
            #expect(svg.contains("data-name=\"\(line)"), "no plot line '\(line)'")
        }
        for folderName in ["simjob-ivfpq-batch", "simjob-hnsw-batch", "simjob-lsh-batch", "simjob-exact-batch"] {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.file("results/data/10/\(folderName)"))) ?? []
            #expect(!files.isEmpty, "no results under \(folderName)")
        }
        // An index of other rows in the same sweep: refused in one line, nothing written.
        let other = folder.file("other.hdf5"), otherIndex = folder.file("other-lsh.hdf5")
        try python("""
            import sys, h5py, numpy as np
            with h5py.File(sys.argv[1], "w") as f:
                f["train"] = np.random.default_rng(1).standard_normal((500, 16)).astype("f4"); f.attrs["distance"] = "euclidean"
            """, other)
        #expect(try simjob("train", other, "--type", "lsh", "--output", otherIndex, "--quiet").status == 0)
        try expectOneLineError(["evaluate", data, "--index", lsh, "--index", otherIndex, "--k", "10", "--output", folder.file("bad.hdf5")],
                               mentions: ["other-lsh.hdf5", "500 vectors"], status: nil, quiet: true)
        #expect(!FileManager.default.fileExists(atPath: folder.file("bad.hdf5")))
    }

    @Test("careless inputs to LSH: its options on other types, an export, k above the rows, altered files; one line each")
    func carelessInputs() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("lsh.hdf5")
        try makeData(data, metric: "euclidean")
        try expectOneLineError(["train", data, "--nlist", "8", "--m", "4", "--tables", "4", "--output", folder.file("x.hdf5")], mentions: ["--type lsh"], status: nil, quiet: true)
        try expectOneLineError(["train", data, "--type", "lsh", "--hash-bits", "40", "--output", folder.file("x.hdf5")], mentions: ["hash-bits"], status: nil, quiet: true)
        try expectOneLineError(["train", data, "--type", "lsh", "--tables", "0", "--output", folder.file("x.hdf5")], mentions: ["tables"], status: nil, quiet: true)
        #expect(try simjob("train", data, "--type", "lsh", "--output", index, "--quiet").status == 0)
        try expectOneLineError(["export", index, "--format", "faiss", "--output", folder.file("x.faiss")], mentions: ["LSH", "cannot be exported"], status: nil)
        try expectOneLineError(["search", index, "--queries", data, "--k", "5000", "--output", folder.file("s.hdf5")], mentions: ["k = 5000"], status: nil, quiet: true)
        try expectOneLineError(["search", index, "--queries", data, "--k", "10", "--probes", "0", "--output", folder.file("s.hdf5")], mentions: ["probes"], status: nil, quiet: true)
        // Altered files: a code outside its bits, a missing dataset, a wrong shape.
        for (name, change) in [("code", "f['index/codes'][1, 7] = 1 << 20"), ("missing", "del f['index/thresholds']"),
                               ("shape", "v = f['index/vectors'][:]; del f['index/vectors']; f['index/vectors'] = v[:, :8]")] {
            let altered = folder.file("altered-\(name).hdf5")
            try FileManager.default.copyItem(atPath: index, toPath: altered)
            _ = try python("import sys, h5py\nf = h5py.File(sys.argv[1], 'r+')\n\(change)\nf.close()", altered)
            try expectOneLineError(["search", altered, "--queries", data, "--k", "10", "--output", folder.file("s.hdf5")], mentions: ["index/"], status: nil, quiet: true)
        }
        #expect(!FileManager.default.fileExists(atPath: folder.file("s.hdf5")))
    }
}
