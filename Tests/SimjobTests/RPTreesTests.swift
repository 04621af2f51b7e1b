import Foundation
import Testing
@testable import SimjobAlgorithms
import SimjobHDF5
import SimjobKernels
import SimjobOperations

/// Rows held in memory, as a `RowSource`.
final class InMemoryRows: RowSource, @unchecked Sendable {
    let matrix: FloatMatrix
    let name: String
    var rows: Int { matrix.rows }
    var dimension: Int { matrix.columns }
    init(_ matrix: FloatMatrix, name: String) {
        self.matrix = matrix
        self.name = name
    }
    func read(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) throws {
        buffer.update(from: matrix.row(range.lowerBound), count: range.count * matrix.columns)
    }
}

/// Random-projection forests (Annoy's construction and search): the trees' structure, exactness
/// when every leaf is opened, recall that grows with search_k, the file round trip, degenerate
/// rows, jobs, and careless inputs.
@Suite("Random-projection trees")
struct RPTreesTests {
    /// The small set with ground truth (`writeSmallSet`).
    func makeData(_ path: String, metric: String) throws {
        try writeSmallSet(path, metric: metric, clusters: 30, seed: 5)
    }

    /// Rows of a matrix as a `RowSource`.
    func source(_ values: [Float], rows: Int, columns: Int) -> InMemoryRows {
        InMemoryRows(FloatMatrix(rows: rows, columns: columns, values: values), name: "test")
    }

    @Test("every tree holds every row once, in leaves of at most leaf_size rows; children point forward; the same forest at any thread count; top levels shared across trees or not",
          arguments: [Metric.euclidean, .angular, .ip], [0, 2 << 20])
    func structure(metric: Metric, sharedNodeBytes: Int) throws {
        var rng = SeededGenerator(seed: 3)
        let n = 2000, d = 12
        var values = [Float](repeating: 0, count: n * d)
        for index in values.indices { values[index] = rng.nextUnitFloat() * 2 - 1 }
        var config = IVFPQConfig()
        config.type = .rptrees
        config.trees = 7
        config.leafSize = 20
        config.threads = 1
        let (one, _) = try RPForestIndex.train(source(values, rows: n, columns: d), metric: metric, config: config, sharedNodeBytes: sharedNodeBytes)
        config.threads = 2
        let (two, _) = try RPForestIndex.train(source(values, rows: n, columns: d), metric: metric, config: config, sharedNodeBytes: sharedNodeBytes)
        #expect(one.children == two.children && one.leafRows == two.leafRows && one.offsets == two.offsets)
        #expect(one.leafRows.count == 7 * n)
        for (position, child) in one.children.enumerated() where child >= 0 { #expect(Int(child) > position / 2) }
        // Walk each tree from its root: its leaves hold every row exactly once.
        for root in one.roots {
            var seen = [Int](repeating: 0, count: n)
            var stack = [root]
            while let node = stack.popLast() {
                if node < 0 {
                    let leaf = Int(-node - 1)
                    let rows = one.leafRows[Int(one.leafStarts[leaf])..<Int(one.leafStarts[leaf + 1])]
                    #expect(rows.count <= 20 && !rows.isEmpty)
                    for row in rows { seen[Int(row)] += 1 }
                } else {
                    stack += [one.children[2 * Int(node)], one.children[2 * Int(node) + 1]]
                }
            }
            #expect(seen.allSatisfy { $0 == 1 })
        }
        // Every leaf opened: exact search (against a brute force in double precision).
        let queries = FloatMatrix(rows: 5, columns: d, values: Array(values[0..<(5 * d)]))
        var search = IVFPQSearchConfig(k: 3, nprobe: 1)
        search.searchK = 7 * n
        let found = try one.search(queries, config: search).0.idArray
        for query in 0..<5 {
            let x = (0..<d).map { Double(values[query * d + $0]) }
            func score(_ row: Int) -> Double {
                let y = (0..<d).map { Double(values[row * d + $0]) }
                switch metric {
                case .euclidean: return zip(x, y).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                case .angular:
                    let dot = zip(x, y).reduce(0) { $0 + $1.0 * $1.1 }
                    return -dot / (y.reduce(0) { $0 + $1 * $1 }.squareRoot() * x.reduce(0) { $0 + $1 * $1 }.squareRoot())
                case .ip: return -zip(x, y).reduce(0) { $0 + $1.0 * $1.1 }
                }
            }
            let scores = (0..<n).map(score)
            let best = (0..<n).sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.prefix(3).map(Int32.init)
            #expect(Set(found[(query * 3)..<(query * 3 + 3)]) == Set(best), "query \(query) (\(metric))")
        }
    }

    @Test("identical rows (no hyperplane separates them) split at random halves and are still found; a set below one leaf is one leaf")
    func degenerateRows() throws {
        let n = 300, d = 8
        let values = (0..<(n * d)).map { Float($0 % d) }
        var config = IVFPQConfig()
        config.type = .rptrees
        config.trees = 3
        config.leafSize = 10
        let (forest, _) = try RPForestIndex.train(source(values, rows: n, columns: d), metric: .euclidean, config: config)
        #expect(forest.leafStarts.count - 1 >= 3 * (n / 10))
        let query = FloatMatrix(rows: 1, columns: d, values: (0..<d).map(Float.init))
        var search = IVFPQSearchConfig(k: 5, nprobe: 1)
        search.searchK = 50
        let (table, _) = try forest.search(query, config: search)
        #expect(table.idArray.allSatisfy { $0 >= 0 } && table.distanceArray.allSatisfy { abs($0) < 1e-6 })
        config.leafSize = 0
        let (single, _) = try RPForestIndex.train(source(Array(values[0..<(10 * d)]), rows: 10, columns: d), metric: .euclidean, config: config)
        #expect(single.splits == 0 && single.leafStarts.count == 4)
    }

    @Test("search_k of every row is exact search; recall never falls as search_k grows; the sweep writes search_k to its report and result files",
          arguments: ["euclidean", "angular", "ip"])
    func exactWhenEveryLeafIsOpened(metric: String) throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("forest.hdf5")
        try makeData(data, metric: metric)
        let trained = try simjob("train", data, "--type", "rptrees", "--trees", "5", "--leaf-size", "40", "--output", index, "--quiet")
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(trained.stdout.contains("RP-trees trees=5 leaf_size=40"), "\(trained.stdout)")
        var recalls: [Double] = []
        for searchK in [10, 100, 400, 2000, 15000] {
            let out = folder.file("s\(searchK).hdf5")
            let searched = try simjob("search", index, "--queries", data, "--k", "10", "--search-k", "\(searchK)", "--output", out, "--quiet")
            #expect(searched.status == 0, "\(searched.stderr)")
            recalls.append(try searchIDRecall(data, out))
        }
        // Candidate sets are nested (the queue opens nodes in one order): recall never falls.
        #expect(zip(recalls, recalls.dropFirst()).allSatisfy { $0 <= $1 }, "recall by search_k: \(recalls)")
        // 5 trees x 3,000 rows: every leaf of every tree opened, exact up to ties.
        #expect(recalls.last! >= 0.999 && recalls[0] < recalls.last!, "\(recalls)")
        let report = folder.file("sweep.hdf5"), results = folder.file("results")
        let swept = try simjob("evaluate", data, "--index", index, "--k", "10", "--param", "search_k=100,15000", "--runs", "1", "--latency-queries", "5",
                               "--output", report, "--ann-benchmarks-results", results, "--quiet")
        #expect(swept.status == 0, "\(swept.stderr)")
        let summary = try python("""
            import sys, h5py
            e = h5py.File(sys.argv[1])["evaluation"]
            print([int(v) for v in e["search_k"][:]], round(float(e["recall"][1]), 3))
            """, report)
        #expect(summary.hasPrefix("[100, 15000] 1.0"), "\(summary)")
        #expect(FileManager.default.fileExists(atPath: folder.file("results/data/10/simjob-rptrees-batch/search_k_15000.hdf5")))
    }

    @Test("a saved forest searches as the trained one; a job trains, sweeps and searches it; bad forest keys are refused with their lines")
    func fileAndJob() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        try makeData(data, metric: "angular")
        var config = IVFPQConfig()
        config.type = .rptrees
        config.trees = 4
        let rows = try VectorSource(DatasetReference(path: data, dataset: "train"), threads: 2)
        let (forest, _) = try RPForestIndex.train(rows, metric: .angular, config: config)
        let path = folder.file("forest.hdf5")
        do {
            let file = try HDF5File.create(path)
            try IndexFile.save(forest, to: file)
            file.close()
        }
        let loaded = try IndexFile.load(HDF5File.open(path))
        var search = IVFPQSearchConfig(k: 10, nprobe: 1)
        search.searchK = 300
        let queries = FloatMatrix(rows: 100, columns: 16, values: try rows.readMatrix(0..<100, metric: .euclidean).array)
        #expect(try forest.search(queries, config: search).0.idArray == loaded.search(queries, config: search, base: nil).0.idArray)
        let job = folder.file("job.yaml")
        try """
            output: \(folder.file("out"))
            steps:
              - name: data
                generate: {n: 2000, queries: 50, dim: 16, k: 10, metric: angular}
              - name: index
                train: {input: data, type: rptrees, trees: 6, leaf_size: 30}
              - name: sweep
                evaluate: {input: data, index: index, k: 10, search_k: [60, 12000], latency_queries: 0, runs: 1}
              - name: found
                search: {index: index, input: data, k: 10, search_k: 200}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        let ran = try simjob("run", job, "--quiet")
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stdout.contains("RP-trees trees=6 leaf_size=30") && ran.stdout.contains("search_k=200"), "\(ran.stdout)")
        let report = try python("""
            import sys, h5py
            e = h5py.File(sys.argv[1])["evaluation"]
            print([int(v) for v in e["search_k"][:]], round(float(e["recall"][1]), 3))
            """, folder.file("out/sweep.hdf5"))
        #expect(report.hasPrefix("[60, 12000] 1.0"), "\(report)")
        let bad = folder.file("bad.yaml")
        try """
            output: \(folder.file("out2"))
            steps:
              - name: data
                generate: {n: 500, queries: 20, dim: 8, k: 10}
              - name: index
                train: {input: data, type: rptrees, trees: 0, leaf_size: -3}
            """.write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try simjob("validate", bad)
        #expect(refused.status != 0 && refused.stderr.contains("bad.yaml:6:") && refused.stderr.contains("train.trees")
                && refused.stderr.contains("train.leaf_size"), "\(refused.stderr)")
    }

    @Test("careless inputs to RP-trees: its options on other types, an export, search_k 0, k above the rows, altered files; one line each")
    func carelessInputs() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("forest.hdf5")
        try makeData(data, metric: "euclidean")
        try expectOneLineError(["train", data, "--nlist", "8", "--m", "4", "--trees", "4", "--output", folder.file("x.hdf5")], mentions: ["--type rptrees"], status: nil, quiet: true)
        try expectOneLineError(["train", data, "--type", "rptrees", "--trees", "0", "--output", folder.file("x.hdf5")], mentions: ["trees"], status: nil, quiet: true)
        try expectOneLineError(["train", data, "--type", "rptrees", "--nlist", "4", "--output", folder.file("x.hdf5")], mentions: ["--nlist"], status: nil, quiet: true)
        #expect(try simjob("train", data, "--type", "rptrees", "--trees", "3", "--leaf-size", "50", "--output", index, "--quiet").status == 0)
        try expectOneLineError(["export", index, "--format", "faiss", "--output", folder.file("x.faiss")], mentions: ["RP-trees", "cannot be exported"], status: nil)
        try expectOneLineError(["export", index, "--format", "annoy", "--output", folder.file("x.ann")], mentions: ["leaf_size = 50"], status: nil)
        try expectOneLineError(["search", index, "--queries", data, "--k", "5000", "--output", folder.file("s.hdf5")], mentions: ["k = 5000"], status: nil, quiet: true)
        try expectOneLineError(["search", index, "--queries", data, "--k", "10", "--search-k", "0", "--output", folder.file("s.hdf5")], mentions: ["search-k"], status: nil, quiet: true)
        try expectOneLineError(["evaluate", data, "--index", index, "--param", "search_k=0", "--output", folder.file("e.hdf5")], mentions: ["search_k"], status: nil, quiet: true)
        // Altered files: a child pointing back (a loop), a row out of range, unordered leaf starts,
        // a missing dataset, a wrong shape.
        for (name, change) in [("loop", "f['index/children'][3, 1] = 0"), ("row", "f['index/leaf_rows'][17] = 3000"),
                               ("starts", "s = f['index/leaf_starts']; s[2] = s[1] - 1"), ("missing", "del f['index/offsets']"),
                               ("shape", "v = f['index/vectors'][:]; del f['index/vectors']; f['index/vectors'] = v[:, :8]")] {
            let altered = folder.file("altered-\(name).hdf5")
            try FileManager.default.copyItem(atPath: index, toPath: altered)
            _ = try python("import sys, h5py\nf = h5py.File(sys.argv[1], 'r+')\n\(change)\nf.close()", altered)
            try expectOneLineError(["search", altered, "--queries", data, "--k", "10", "--output", folder.file("s.hdf5")], mentions: ["index"], status: nil, quiet: true)
        }
        #expect(!FileManager.default.fileExists(atPath: folder.file("s.hdf5")))
    }

    @Test("export --format annoy: Annoy's node layout, read back by a reading of Annoy's load and search in numpy, answers as simjob does; forests Annoy cannot read are refused",
          arguments: ["euclidean", "angular"])
    func annoyExport(metric: String) throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("forest.hdf5"), ann = folder.file("forest.ann"), searched = folder.file("s.hdf5")
        try makeData(data, metric: metric)
        #expect(try simjob("train", data, "--type", "rptrees", "--trees", "4", "--output", index, "--quiet").status == 0)
        let exported = try simjob("export", index, "--format", "annoy", "--output", ann)
        #expect(exported.status == 0 && exported.stdout.contains("as annoy"), "\(exported.stderr)")
        #expect(try simjob("search", index, "--queries", data, "--k", "10", "--search-k", "120", "--output", searched, "--quiet").status == 0)
        // annoylib.h: roots are the nodes at the end with the most descendants; a node of at
        // most K = d + 2 descendants is a bucket (ids where the children start); margins are
        // a + v.x (euclidean) or v.x (angular); the queue pops the largest priority.
        let printed = try python("""
            import sys, heapq, h5py, numpy as np
            f = h5py.File(sys.argv[1]); x = f["train"][:].astype("f8"); q = f["test"][:].astype("f8"); metric = sys.argv[4]
            d = x.shape[1]; K = d + 2; euclid = metric == "euclidean"
            co, vo = (8, 16) if euclid else (4, 12); size = vo + 4 * d
            raw = open(sys.argv[2], "rb").read(); assert len(raw) % size == 0
            nodes = len(raw) // size
            def i32(node, at): return int(np.frombuffer(raw, "<i4", 1, node * size + at)[0])
            def vec(node): return np.frombuffer(raw, "<f4", d, node * size + vo)
            roots, m = [], None
            for i in range(nodes - 1, -1, -1):
                k = i32(i, 0)
                if m is None or k == m: roots.append(i); m = k
                else: break
            if len(roots) > 1 and i32(roots[0], co) == i32(roots[-1], co): roots.pop()
            assert m == len(x) and len(roots) == 4, (m, len(roots))
            assert np.allclose(vec(7), x[7] / (1 if euclid else np.linalg.norm(x[7])), atol=1e-6)
            if not euclid: q = q / np.linalg.norm(q, axis=1, keepdims=True)
            q32 = q.astype("f4")
            ours = h5py.File(sys.argv[3])["search/neighbors"][:]
            same = 0
            for row in range(len(q)):
                heap = [(-np.inf, r) for r in roots]; found = []
                while len(found) < 120 and heap:
                    p, i = heapq.heappop(heap); p = -p; k = i32(i, 0)
                    if k == 1 and i < len(x): found.append(i)
                    elif k <= K: found += [i32(i, co + 4 * s) for s in range(k)]
                    else:
                        margin = float(vec(i) @ q32[row]) + (float(np.frombuffer(raw, "<f4", 1, i * size + 4)[0]) if euclid else 0)
                        heapq.heappush(heap, (-min(p, margin), i32(i, co + 4)))
                        heapq.heappush(heap, (-min(p, -margin), i32(i, co)))
                c = np.unique(found)
                dist = ((x[c] - q[row]) ** 2).sum(1) if euclid else -(x[c] / np.linalg.norm(x[c], axis=1, keepdims=True)) @ q[row]
                best = c[np.lexsort((c, dist))][:10]
                same += int(set(best) == set(ours[row]))
            print(same, len(q))
            """, data, ann, searched, metric)
        // Alike up to the order of nearly equal margins (float32 sums in another order), which
        // can open another last leaf: at least 90 of the 100 queries.
        let parts = printed.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(parts.count == 2 && parts[0] >= 90 && parts[1] == 100, "queries answered alike: \(printed)")
        // Leaves of another size would change meaning in Annoy; inner product has another layout.
        let small = folder.file("small.hdf5")
        #expect(try simjob("train", data, "--type", "rptrees", "--trees", "2", "--leaf-size", "9", "--output", small, "--quiet").status == 0)
        try expectOneLineError(["export", small, "--format", "annoy", "--output", folder.file("x.ann")], mentions: ["leaf_size = 9", "d + 2"], status: nil)
        #expect(!FileManager.default.fileExists(atPath: folder.file("x.ann")))
        try expectOneLineError(["export", data, "--format", "annoy", "--output", folder.file("x.ann")], mentions: ["data.hdf5"], status: nil)
        // A device or a missing folder as the output: one line, nothing written.
        try expectOneLineError(["export", index, "--format", "annoy", "--output", "/dev/full"], mentions: ["/dev/full", "is a device"], status: nil)
        try expectOneLineError(["export", index, "--format", "annoy", "--output", folder.file("missing/x.ann")], mentions: ["does not exist"], status: nil)
        // The index named as its own output: refused, and the index still searches.
        try expectOneLineError(["export", index, "--format", "annoy", "--output", index], mentions: ["is an input"], status: nil)
        #expect(try simjob("search", index, "--queries", data, "--k", "3", "--output", folder.file("still.hdf5"), "--quiet").status == 0)
    }
}
