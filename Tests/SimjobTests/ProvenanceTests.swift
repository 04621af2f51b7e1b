import Foundation
import Testing
@testable import SimjobOperations
import SimjobHDF5
import SimjobKernels
@testable import SimjobAlgorithms
import SimjobCore

/// Provenance stamps and `verify`: an artifact built from other vectors, with a missing row or
/// under another model tag fails, in one line and with a non-zero exit.
@Suite("Provenance and verify")
struct ProvenanceTests {
    /// 2,000 x 16 Gaussian rows and 20 queries, with a `model` attribute as h5py users write it.
    func makeData(_ path: String, model: String = "minilm-v2@2026-11-30", float64: Bool = false, seed: Int = 5) throws {
        try python("""
            import sys, h5py, numpy as np
            x = np.random.default_rng(int(sys.argv[4])).standard_normal((2020, 16)).astype("f4")
            with h5py.File(sys.argv[1], "w") as f:
                f["train"] = x[:2000].astype("f8" if sys.argv[3] == "1" else "f4"); f["test"] = x[2000:]
                f.attrs["distance"] = "euclidean"; f.attrs["model"] = sys.argv[2]
            """, path, model, float64 ? "1" : "0", String(seed))
    }

    /// Runs verify; returns (status, stdout, stderr).
    func verify(_ artifact: String, against: String, _ extra: String...) throws -> CommandResult {
        try simjob(["verify", artifact, "--against", against] + extra)
    }

    @Test("index, graph and dedup built from a set verify against it, with the file's tags and --tag; float64 storage of the same values has the same checksum")
    func passes() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), wide = folder.file("wide.hdf5")
        try makeData(data)
        try makeData(wide, float64: true)
        let index = folder.file("index.hdf5"), graph = folder.file("graph.hdf5"), dedup = folder.file("dedup.hdf5")
        #expect(try simjob("train", data, "--nlist", "8", "--m", "4", "--nbits", "4", "--pq-iterations", "3", "--output", index, "--tag", "features=title,body", "--quiet").status == 0)
        #expect(try simjob("knn-graph", data, "--k", "5", "--output", graph, "--quiet").status == 0)
        #expect(try simjob("knn-graph", data, "--k", "5", "--method", "approx", "--output", folder.file("approx.hdf5"), "--quiet").status == 0)
        #expect(try simjob("dedup", data, "--threshold", "0.5", "--output", dedup, "--quiet").status == 0)
        for artifact in [index, graph, folder.file("approx.hdf5"), dedup] {
            let result = try verify(artifact, against: data, "--require", "model=minilm-v2@2026-11-30")
            #expect(result.status == 0, "\(artifact): \(result.stdout) \(result.stderr)")
            #expect(result.stdout.contains("checksum") && !result.stdout.contains("MISMATCH"))
            #expect(try verify(artifact, against: wide).status == 0, "float64 copy of the same values")
        }
        let tagged = try verify(index, against: data, "--require", "features=title,body", "--require", "model=minilm-v2@2026-11-30")
        #expect(tagged.status == 0, "\(tagged.stderr)")
        // The stamp as h5py reads it.
        let fields = try python("""
            import sys, h5py
            p = h5py.File(sys.argv[1], "r")["provenance"]
            print(p.attrs["artifact"], p.attrs["rows"], p.attrs["dimension"], p.attrs["tag.model"], p.attrs["tag.features"], len(p["sample_rows"]), len(p.attrs["checksum"]))
            """, index)
        #expect(fields == "index 2000 16 minilm-v2@2026-11-30 title,body 1024 16")
    }

    @Test("a changed row, a missing row and a wrong model tag each fail verify, naming the check")
    func failures() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("index.hdf5")
        try makeData(data)
        #expect(try simjob("train", data, "--nlist", "8", "--m", "4", "--nbits", "4", "--pq-iterations", "3", "--output", index, "--quiet").status == 0)
        func expectFailure(_ result: CommandResult, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(result.status == 1, "exit \(result.status): \(result.stderr)", sourceLocation: sourceLocation)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("error: "), "\(result.stderr)", sourceLocation: sourceLocation)
            for fragment in fragments { #expect(result.stderr.contains(fragment), "'\(fragment)' not in \(result.stderr)", sourceLocation: sourceLocation) }
            #expect(result.stdout.contains("MISMATCH"), sourceLocation: sourceLocation)
        }
        // One value of one row changed by the smallest step.
        let changed = folder.file("changed.hdf5")
        try FileManager.default.copyItem(atPath: data, toPath: changed)
        try python("""
            import sys, h5py, numpy as np
            with h5py.File(sys.argv[1], "r+") as f:
                x = f["train"][:]; x[1234, 7] = np.nextafter(x[1234, 7], np.float32(10)); f["train"][:] = x
            """, changed)
        expectFailure(try verify(index, against: changed), ["checksum", index])
        // A quarter of the rows changed: the sampled estimate brackets 500.
        let many = folder.file("many.hdf5")
        try FileManager.default.copyItem(atPath: data, toPath: many)
        try python("""
            import sys, h5py
            with h5py.File(sys.argv[1], "r+") as f:
                x = f["train"][:]; x[::4] += 1; f["train"][:] = x
            """, many)
        let estimated = try verify(index, against: many)
        expectFailure(estimated, ["rows changed"])
        let interval = estimated.stdout.split(separator: "\n").first { $0.hasPrefix("rows changed") }.map(String.init) ?? ""
        let numbers = interval.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        // "... N of 1024 sampled rows differ  about E of 2000 rows (95% interval L-H)"
        #expect(numbers.count >= 6 && numbers[numbers.count - 2] <= 500 && numbers[numbers.count - 1] >= 500, "\(interval)")
        // One row missing.
        let missing = folder.file("missing.hdf5")
        try python("""
            import sys, h5py
            with h5py.File(sys.argv[1], "r") as f, h5py.File(sys.argv[2], "w") as g:
                g["train"] = f["train"][:-1]; g.attrs["distance"] = "euclidean"; g.attrs["model"] = f.attrs["model"]
            """, data, missing)
        expectFailure(try verify(index, against: missing), ["rows: 2000 vs 1999", "row ids"])
        // The wrong model, and a tag the artifact lacks.
        expectFailure(try verify(index, against: data, "--require", "model=minilm-v2@2026-12-01"), ["tag model", "required: minilm-v2@2026-12-01"])
        expectFailure(try verify(index, against: data, "--require", "features=title"), ["tag features", "(none)"])
    }

    @Test("the content taken from the vectors read equals a second read's, and content of other rows is refused")
    func contentFromMemory() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        try makeData(data)
        let reference = DatasetReference(path: data, dataset: "train")
        let source = try VectorSource(reference, threads: 2)
        let (vectors, content) = try Provenance.readMatrix(source, metric: .angular, spillingTo: nil, threads: 2)
        // The rows were normalised after the content was taken: the stamp still matches the file.
        #expect(abs(VectorKernels.dot(vectors.row(3), vectors.row(3), count: 16) - 1) <= 1e-5)
        let fromMemory = try Provenance.of(reference, artifact: "knn_graph", settings: "{}", content: content)
        let reread = try Provenance.of(reference, artifact: "knn_graph", settings: "{}")
        #expect(fromMemory.checksum == reread.checksum && fromMemory.sampleHashes == reread.sampleHashes
                && fromMemory.sampleRows == reread.sampleRows)
        // Content of 1,999 rows (the file changed while an engine ran) is refused by name.
        let fewer = Provenance.content(of: FloatMatrix(rows: 1999, columns: 16))
        #expect {
            try Provenance.of(reference, artifact: "knn_graph", settings: "{}", content: fewer)
        } throws: { error in
            let message = (error as? SimjobError)?.message ?? ""
            return message.contains(data) && message.contains("1999 x 16")
        }
    }

    @Test("artifacts without provenance, altered provenance and bad --require are refused in one line")
    func refusals() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("index.hdf5")
        try makeData(data)
        #expect(try simjob("train", data, "--nlist", "8", "--m", "4", "--nbits", "4", "--pq-iterations", "3", "--output", index, "--quiet").status == 0)
        func expectRefused(_ result: CommandResult, _ fragments: [String], status: Int32 = 1, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(result.status == status, "exit \(result.status): \(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)", sourceLocation: sourceLocation)
            for fragment in fragments { #expect(result.stderr.contains(fragment), "'\(fragment)' not in \(result.stderr)", sourceLocation: sourceLocation) }
        }
        let bare = folder.file("bare.hdf5")
        try FileManager.default.copyItem(atPath: index, toPath: bare)
        try python("import sys, h5py\nwith h5py.File(sys.argv[1], 'r+') as f: del f['provenance']", bare)
        expectRefused(try verify(bare, against: data), [bare, "no provenance"])
        let altered = folder.file("altered.hdf5")
        try FileManager.default.copyItem(atPath: index, toPath: altered)
        try python("import sys, h5py\nwith h5py.File(sys.argv[1], 'r+') as f: f['provenance'].attrs['checksum'] = 'zz'", altered)
        expectRefused(try verify(altered, against: data), [altered, "checksum 'zz'"])
        expectRefused(try verify(index, against: data, "--require", "model"), ["--require 'model'", "KEY=VALUE"])
        expectRefused(try verify(index, against: folder.file("nope.hdf5")), ["nope.hdf5"])
        expectRefused(try simjob("train", data, "--nlist", "8", "--m", "4", "--output", folder.file("t.hdf5"), "--tag", "bad key=1", "--quiet"), ["--tag 'bad key=1'"])
        #expect(!FileManager.default.fileExists(atPath: folder.file("t.hdf5")))
    }

    @Test("a job's verify step fails the job when its index was built from other vectors or under another model tag")
    func jobStep() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), other = folder.file("other.hdf5")
        try makeData(data)
        try makeData(other, model: "minilm-v1", seed: 6)
        func job(_ against: String, require: String) -> String {
            folder.write("""
                output: \(folder.file("out"))
                tags: {features: "title,body"}
                steps:
                  - name: index
                    train: {input: \(data), nlist: 8, m: 4, nbits: 4, pq_iterations: 3}
                  - name: flat
                    train: {input: \(data), type: ivfflat, nlist: 8}
                  - name: graphindex
                    train: {input: \(data), type: hnsw, m: 8}
                  - name: graph_check
                    verify: {artifact: graphindex, input: \(data)}
                  - name: check
                    verify: {artifact: index, input: \(against), require: {\(require)}}
                  - name: flat_check
                    verify: {artifact: flat, input: \(data)}
                """, name: "job.yaml")
        }
        let good = try simjob("run", job(data, require: "model: minilm-v2@2026-11-30, features: \"title,body\""), "--quiet")
        #expect(good.status == 0, "\(good.stderr)")
        let report = try python("import sys, h5py\nprint(h5py.File(sys.argv[1], 'r')['verify'].attrs['passed'])", folder.file("out/check.hdf5"))
        #expect(report == "1")
        #expect(FileManager.default.fileExists(atPath: folder.file("out/flat_check.hdf5")), "the IVF-Flat step's check did not run")
        #expect(FileManager.default.fileExists(atPath: folder.file("out/graph_check.hdf5")), "the HNSW step's check did not run")
        let skewed = try simjob("run", job(other, require: "model: minilm-v2@2026-11-30"), "--quiet")
        #expect(skewed.status == 1)
        #expect(skewed.stderr.contains("checksum") && skewed.stderr.contains("tag model"), "\(skewed.stderr)")
        let wrongTag = try simjob("run", job(data, require: "model: minilm-v3"), "--quiet")
        #expect(wrongTag.status == 1 && wrongTag.stderr.contains("tag model"), "\(wrongTag.stderr)")
        let badKey = try simjob("run", folder.write("""
            output: \(folder.file("out2"))
            steps:
              - name: check
                verify: {artifact: \(data), input: \(data), require: [model]}
            """, name: "bad.yaml"), "--quiet")
        #expect(badKey.status != 0 && badKey.stderr.contains("check.require") || badKey.stderr.contains("require"), "\(badKey.stderr)")
    }
}
