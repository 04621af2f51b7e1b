import Foundation
import Testing
@testable import SimjobAlgorithms
@testable import SimjobOperations
import SimjobKernels

@Suite("Deduplication")
struct DedupTests {
    func dedup(_ vectors: FloatMatrix, thresholds: [Double], mode: DedupConfig.Mode = .exact, keep: DedupConfig.Keep = .first, metric: Metric = .euclidean) throws -> DedupResult {
        var config = DedupConfig(thresholds: thresholds)
        config.mode = mode
        config.keep = keep
        config.threads = 2
        config.partitions = mode == .fast ? 8 : 0
        return try Dedup(config: config).run(vectors, metric: metric)
    }

    /// Rows on the x axis at the given positions (dimension 3).
    func line(_ positions: [Float]) -> FloatMatrix {
        FloatMatrix(rows: positions.count, columns: 3, values: positions.flatMap { [$0, 0, 0] })
    }

    @Test("a pair at exactly the threshold is a duplicate; just above it is not")
    func thresholdIsInclusive() throws {
        let points = line([0, 0.5, 3])
        let at = try dedup(points, thresholds: [0.5])
        #expect(at.pairs.count == 1 && at.pairs[0] == (0, 1))
        #expect(at.byThreshold[0].group == [0, 0, -1])
        let below = try dedup(points, thresholds: [0.4999])
        #expect(below.pairs.isEmpty)
    }

    @Test("chaining: A ~ B ~ C is one group even when A and C are farther apart", arguments: DedupConfig.Mode.allCases)
    func chaining(mode: DedupConfig.Mode) throws {
        let result = try dedup(line([0, 0.4, 0.8, 5, 5.3, 9]), thresholds: [0.5], mode: mode)
        #expect(result.byThreshold[0].group == [0, 0, 0, 1, 1, -1])
        #expect(result.byThreshold[0].keep == [1, 0, 0, 1, 0, 1])
        #expect(result.byThreshold[0].rowsRemoved == 3)
        #expect(!result.pairs.contains { $0 == (0, 2) })
    }

    @Test("all rows identical make one group; no duplicates leave every row alone")
    func extremes() throws {
        let same = FloatMatrix(rows: 50, columns: 4, values: (0..<200).map { Float($0 % 4) })
        let one = try dedup(same, thresholds: [0])
        #expect(one.byThreshold[0].group.allSatisfy { $0 == 0 })
        #expect(one.byThreshold[0].keep.reduce(0) { $0 + Int($1) } == 1)
        #expect(one.pairs.count == 50 * 49 / 2)
        let spread = gaussianMatrix(rows: 300, dimension: 16, seed: 3)
        for mode in DedupConfig.Mode.allCases {
            let none = try dedup(spread, thresholds: [0.01], mode: mode)
            #expect(none.byThreshold[0].group.allSatisfy { $0 == -1 })
            #expect(none.byThreshold[0].keep.allSatisfy { $0 == 1 })
        }
    }

    @Test("keep centroid picks the member closest to the group mean")
    func keepCentroid() throws {
        let points = line([0, 0.1, 0.2, 7])
        #expect(try dedup(points, thresholds: [0.15], keep: .centroid).byThreshold[0].keep == [0, 1, 0, 1])
        #expect(try dedup(points, thresholds: [0.15], keep: .first).byThreshold[0].keep == [1, 0, 0, 1])
    }

    @Test("several thresholds in one pass give each its own groups")
    func severalThresholds() throws {
        let result = try dedup(line([0, 0.1, 1, 1.5, 4]), thresholds: [0.2, 0.6])
        #expect(result.byThreshold.map(\.threshold) == [0.2, 0.6])
        #expect(result.byThreshold[0].group == [0, 0, -1, -1, -1])
        #expect(result.byThreshold[1].group == [0, 0, 1, 1, -1])
        #expect(result.pairs.count == 2)
    }

    @Test("fast mode finds exactly the exact pairs", arguments: [Metric.euclidean, Metric.angular])
    func fastEqualsExact(metric: Metric) throws {
        let data = mixture(clusters: 12, perCluster: 150, dimension: 12, seed: 31)
        // Plant near-duplicates, some across cluster borders by construction of the mixture.
        var rng = SeededGenerator(seed: 32)
        for copy in stride(from: 0, to: data.rows, by: 9) {
            let source = Int(rng.next() % UInt64(data.rows))
            for j in 0..<12 { data.row(copy)[j] = data.row(source)[j] + 0.002 * (rng.nextUnitFloat() - 0.5) }
        }
        let prepared = FloatMatrix(rows: data.rows, columns: 12)
        prepared.pointer.update(from: data.pointer, count: data.rows * 12)
        if metric == .angular { VectorKernels.normalizeRows(prepared.pointer, rows: data.rows, dimension: 12) }
        let threshold = metric == .angular ? 0.0005 : 0.05
        let exact = try dedup(prepared, thresholds: [threshold], metric: metric)
        let fast = try dedup(prepared, thresholds: [threshold], mode: .fast, metric: metric)
        #expect(exact.pairs.count > 150)
        #expect(exact.pairs.map { [$0.0, $0.1] } == fast.pairs.map { [$0.0, $0.1] })
        #expect(exact.byThreshold[0].group == fast.byThreshold[0].group)
        #expect(fast.sampledPairRecall == 1)

        // Probing a few cells from both sides: every pair found is a true pair, none twice,
        // and nearly all are found (the planted copies sit next to their sources).
        var config = DedupConfig(thresholds: [threshold])
        config.mode = .fast
        config.partitions = 8
        config.nprobe = 2
        config.threads = 2
        let probed = try Dedup(config: config).run(prepared, metric: metric)
        let truth = Set(exact.pairs.map { Int64($0.0) << 32 | Int64($0.1) })
        let found = probed.pairs.map { Int64($0.0) << 32 | Int64($0.1) }
        #expect(Set(found).count == found.count, "a pair listed twice")
        #expect(Set(found).isSubset(of: truth))
        #expect(Double(found.count) >= 0.99 * Double(truth.count), "\(found.count) of \(truth.count) pairs")
        #expect(probed.sampledPairRecall.map { $0 >= 0.99 } == true)
    }

    @Test("planted groups are recovered exactly, pairs match numpy, outputs read back with h5py")
    func plantedGroups() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), out = folder.file("dedup.hdf5"), kept = folder.file("kept.hdf5")
        #expect(try simjob("generate", data, "--n", "3000", "--queries", "20", "--dim", "24", "--duplicates", "0.1", "--k", "5", "--quiet").status == 0)
        for mode in ["exact", "fast"] {
            let result = try simjob("dedup", data, "--threshold", "0.2,0.05", "--mode", mode, "--write-pairs", "--write-kept", kept, "--output", out, "--quiet")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("rows removed") && result.stdout.contains("group sizes"), "\(result.stdout)")
            let report = try python("""
                import sys, json, h5py, numpy as np
                d = h5py.File(sys.argv[1], "r"); o = h5py.File(sys.argv[2], "r"); k = h5py.File(sys.argv[3], "r")
                x = d["train"][:].astype("f8"); planted = d["dup_group"][:]
                g = o["dedup/group"][:]; keep = o["dedup/keep"][:]
                # the same partition of rows into groups as planted (group ids may differ)
                def partition(labels):
                    groups = {}
                    for row, label in enumerate(labels):
                        if label >= 0: groups.setdefault(label, []).append(row)
                    return sorted(tuple(v) for v in groups.values())
                same_groups = partition(g) == partition(planted)
                # pairs against a numpy brute force
                sq = (x * x).sum(1)
                dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0))
                i, j = np.nonzero(np.triu(dist <= 0.2, 1))
                numpy_pairs = set(zip(i.tolist(), j.tolist()))
                pairs = set(map(tuple, o["dedup/pairs"][:].tolist()))
                one_kept = all(keep[np.array(members)].sum() == 1 for members in partition(g))
                out = {
                    "groups": same_groups, "pairs_equal": pairs == numpy_pairs, "one_kept_per_group": bool(one_kept),
                    "unique_kept": bool(np.all(keep[g == -1] == 1)),
                    "dtypes": [str(g.dtype), str(keep.dtype), str(o["dedup/pairs"].dtype), str(o["dedup/pair_distances"].dtype)],
                    "attrs": sorted(k2 for k2 in o["dedup"].attrs.keys() if k2 in ("threshold", "groups", "rows_removed", "pairs", "metric")),
                    "by_threshold": [float(o["dedup/by_threshold/%d" % t].attrs["threshold"]) for t in range(2)],
                    "kept_rows": bool(np.array_equal(k["train"][:], d["train"][:][keep == 1]) and np.array_equal(k["original_ids"][:], np.nonzero(keep)[0])),
                    "kept_test": bool(np.array_equal(k["test"][:], d["test"][:])), "kept_has_no_stale_truth": "neighbors" not in k,
                }
                print(json.dumps(out, sort_keys=True))
                """, data, out, kept)
            #expect(report == #"{"attrs": ["groups", "metric", "pairs", "rows_removed", "threshold"], "by_threshold": [0.2, 0.05], "dtypes": ["int32", "uint8", "int32", "float32"], "groups": true, "kept_has_no_stale_truth": true, "kept_rows": true, "kept_test": true, "one_kept_per_group": true, "pairs_equal": true, "unique_kept": true}"#, "\(mode)")
        }
    }

    @Test("a set above the memory limit spills its vectors beside the output: the same groups and pairs, nothing left behind", arguments: DedupConfig.Mode.allCases)
    func spilled(mode: DedupConfig.Mode) throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        #expect(try simjob("generate", data, "--n", "3000", "--queries", "1", "--dim", "24", "--duplicates", "0.1", "--k", "0", "--quiet").status == 0)
        var config = DedupConfig(thresholds: [0.2])
        config.mode = mode
        let plan = Dedup.memoryPlan(rows: 3000, dimension: 24, config: config)
        let options = ["--threshold", "0.2", "--mode", mode.rawValue, "--keep", "centroid", "--write-pairs", "--threads", "2", "--quiet"]
        let inMemory = try simjob(["dedup", data, "--output", folder.file("memory.hdf5")] + options)
        #expect(inMemory.status == 0 && !inMemory.stdout.contains("spilled"), "\(inMemory.stdout) \(inMemory.stderr)")
        let outputs = folder.file("out")
        try FileManager.default.createDirectory(atPath: outputs, withIntermediateDirectories: true)
        let spilled = try simjob(["dedup", data, "--output", outputs + "/spilled.hdf5", "--memory-limit", "\(plan.state + plan.vectors / 2)"] + options)
        #expect(spilled.status == 0 && spilled.stdout.contains("vectors spilled to disk"), "\(spilled.stdout) \(spilled.stderr)")
        let report = try python("""
            import sys, h5py, numpy as np
            a = h5py.File(sys.argv[1], "r")["dedup"]; b = h5py.File(sys.argv[2], "r")["dedup"]
            same = all(np.array_equal(a[name][:], b[name][:]) for name in ("group", "keep", "pairs", "pair_distances"))
            print(same, len(a["pairs"]) > 100, int(b.attrs["spilled_bytes"]))
            """, folder.file("memory.hdf5"), outputs + "/spilled.hdf5")
        #expect(report == "True True \(3000 * 24 * 4)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outputs) == ["spilled.hdf5"])
        // No room for the spill file: one line naming the folder, no output, nothing left.
        try FileManager.default.removeItem(atPath: outputs + "/spilled.hdf5")
        let full = try runProgram("/bin/sh", ["-c", "ulimit -f 256; exec \"$0\" \"$@\"", simjobPath, "dedup", data, "--output", outputs + "/spilled.hdf5",
                                               "--memory-limit", "\(plan.state + plan.vectors / 2)"] + options)
        #expect(full.status == 1 && full.stderr.contains("no room for a spill file") && full.stderr.contains(outputs), "\(full.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outputs).isEmpty)
        // The job key does the same as the option.
        if mode == .fast {
            let job = folder.file("job.yaml")
            try """
                name: spill
                output: \(folder.file("job-out"))
                inputs: {corpus: \(data)}
                steps:
                  - name: dedup
                    dedup: {input: corpus, threshold: 0.2, mode: fast, keep: centroid, write_pairs: true, memory_limit: \(plan.state + plan.vectors / 2)}
                """.write(toFile: job, atomically: true, encoding: .utf8)
            let run = try simjob("run", job, "--quiet")
            #expect(run.status == 0, "\(run.stderr)")
            let same = try python("""
                import sys, h5py, numpy as np
                a = h5py.File(sys.argv[1], "r")["dedup"]; b = h5py.File(sys.argv[2], "r")["dedup"]
                print(np.array_equal(a["pairs"][:], b["pairs"][:]) and np.array_equal(a["group"][:], b["group"][:]), "spilled_bytes" in b.attrs)
                """, folder.file("memory.hdf5"), folder.file("job-out") + "/dedup.hdf5")
            #expect(same == "True True")
        }
        // State alone above the limit: refused before anything is read, nothing written.
        let tight = try simjob(["dedup", data, "--output", outputs + "/spilled.hdf5", "--memory-limit", "\(plan.state / 2)"] + options)
        #expect(tight.status == 1 && tight.stderr.contains("besides the vectors") && tight.stderr.contains("data.hdf5"), "\(tight.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outputs).isEmpty)
    }

    @Test("bad dedup input gets clear errors")
    func errors() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        #expect(try simjob("generate", data, "--n", "300", "--queries", "1", "--dim", "8", "--metric", "ip", "--k", "0", "--quiet").status == 0)
        let fast = try simjob("dedup", data, "--threshold", "0.1", "--mode", "fast", "--output", folder.file("o.hdf5"))
        #expect(fast.status == 1 && fast.stderr.contains("--mode exact for ip"), "\(fast.stderr)")
        let bad = try simjob("dedup", data, "--threshold", "abc", "--output", folder.file("o.hdf5"))
        #expect(bad.status != 0 && bad.stderr.contains("threshold"))
        #expect(!FileManager.default.fileExists(atPath: folder.file("o.hdf5")))
    }
}
