import Foundation
import Testing
@testable import SimjobOperations
import SimjobHDF5

/// Exports loaded by the tools they are written for (faiss-cpu from PyPI), imports of files
/// those tools wrote, and the damaged cases on both sides.
@Suite("Export and import of serving indexes")
struct ExportTests {
    /// Seeded Gaussian mixture, 3,000 x 16 with 100 queries, written by numpy.
    func makeData(_ path: String, metric: String) throws {
        try python("""
            import sys, h5py, numpy as np
            rng = np.random.default_rng(11)
            centres = rng.standard_normal((20, 16)) * 3
            x = (centres[rng.integers(0, 20, 3100)] + rng.standard_normal((3100, 16))).astype("f4")
            with h5py.File(sys.argv[1], "w") as f:
                f["train"] = x[:3000]; f["test"] = x[3000:]; f.attrs["distance"] = sys.argv[2]
            """, path, metric)
    }

    /// FAISS's search of the exported index against simjob's search output: the same ids in the
    /// same order wherever distances are not tied (within 1e-4), distances converted from
    /// simjob's convention (plain L2, 1 - cos, -dot) within 1e-4 relative. Prints the fraction of
    /// queries with identical id lists.
    static let compareScript = """
        import sys, faiss, h5py, numpy as np
        faiss_file, data, result, metric, nprobe = sys.argv[1:6]
        index = faiss.read_index(faiss_file)
        faiss.extract_index_ivf(index).nprobe = int(nprobe)
        q = h5py.File(data, "r")["test"][:].astype("f4")
        D, I = index.search(q, 10)
        s = h5py.File(result, "r")["search"]
        sI, sD = s["neighbors"][:], s["distances"][:].astype("f8")
        conv = {"euclidean": sD ** 2, "angular": 2 * sD, "ip": -sD}[metric]
        assert np.allclose(conv, D, rtol=1e-4, atol=1e-4), float(np.abs(conv - D).max())
        for r in range(len(q)):
            for j in range(10):
                if I[r, j] != sI[r, j]:
                    assert abs(D[r, j] - conv[r, np.where(sI[r] == I[r, j])[0][0]]) <= 1e-4 if I[r, j] in sI[r] else abs(D[r, j] - D[r, -1]) <= 1e-4, (r, j)
        print((I == sI).all(1).mean())
        """

    @Test("faiss.read_index loads an exported IVF-PQ or IVF-Flat and answers as simjob search does", arguments: [
        ("euclidean", "8"), ("angular", "5"), ("ip", "8"), ("euclidean", "flat"), ("angular", "flat"), ("ip", "flat"),
    ])
    func exported(metric: String, nbits: String) throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("index.hdf5"), exported = folder.file("index.faiss"), result = folder.file("s.hdf5")
        try makeData(data, metric: metric)
        let type = nbits == "flat" ? ["--type", "ivfflat"] : ["--m", "4", "--nbits", nbits, "--pq-iterations", "6"]
        #expect(try simjob(["train", data, "--nlist", "16", "--output", index, "--quiet"] + type).status == 0)
        let export = try simjob("export", index, "--format", "faiss", "--output", exported)
        #expect(export.status == 0, "\(export.stderr)")
        #expect(try simjob("search", index, "--queries", data, "--k", "10", "--nprobe", "3", "--output", result, "--quiet").status == 0)
        let identical = Double(try python(Self.compareScript, exported, data, result, metric, "3")) ?? 0
        #expect(identical >= 0.95, "only \(identical) of the queries have identical id lists")
        // The export read back by simjob is the same index: its re-export is byte-identical.
        let again = folder.file("again.hdf5"), reexported = folder.file("again.faiss")
        #expect(try simjob("import", exported, "--output", again).status == 0)
        #expect(try simjob("export", again, "--format", "faiss", "--output", reexported).status == 0)
        #expect(FileManager.default.contents(atPath: exported) == FileManager.default.contents(atPath: reexported))
    }

    @Test("a FAISS-built IVF-PQ (4-bit codes) imported and searched gives FAISS's neighbours and recall")
    func importedFromFAISS() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), built = folder.file("faiss.index"), index = folder.file("index.hdf5"), result = folder.file("s.hdf5")
        try makeData(data, metric: "euclidean")
        try python("""
            import sys, faiss, h5py
            x = h5py.File(sys.argv[1], "r")["train"][:]
            index = faiss.IndexIVFPQ(faiss.IndexFlatL2(16), 16, 16, 4, 4)
            index.train(x); index.add(x); faiss.write_index(index, sys.argv[2])
            """, data, built)
        let imported = try simjob("import", built, "--output", index, "--source", data)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("nbits=4"))
        #expect(try simjob("search", index, "--queries", data, "--k", "10", "--nprobe", "4", "--output", result, "--quiet").status == 0)
        let identical = Double(try python(Self.compareScript, built, data, result, "euclidean", "4")) ?? 0
        #expect(identical >= 0.95, "only \(identical) of the queries have identical id lists")
        // Recall against exact neighbours, FAISS's search and simjob's, within 1e-9.
        let recalls = try python("""
            import sys, faiss, h5py, numpy as np
            f = h5py.File(sys.argv[1], "r"); x, q = f["train"][:], f["test"][:]
            truth = np.argsort(((q[:, None, :] - x[None]) ** 2).sum(-1), 1)[:, :10]
            index = faiss.read_index(sys.argv[2]); index.nprobe = 4
            _, I = index.search(q, 10)
            sI = h5py.File(sys.argv[3], "r")["search/neighbors"][:]
            r = lambda found: np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)])
            print(r(I), r(sI))
            """, data, built, result).split(separator: " ").compactMap { Double($0) }
        #expect(recalls.count == 2 && abs(recalls[0] - recalls[1]) <= 1e-9, "recalls \(recalls)")
        // With the source recorded, refinement works on the imported index.
        #expect(try simjob("search", index, "--queries", data, "--k", "10", "--nprobe", "4", "--refine", "4", "--output", folder.file("r.hdf5"), "--quiet").status == 0)
    }

    @Test("a FAISS-built IndexIVFFlat imported gives FAISS's neighbours; with nprobe = nlist, IVF-Flat is exact search")
    func importedIVFFlat() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), built = folder.file("flat.index"), index = folder.file("index.hdf5"), result = folder.file("s.hdf5")
        try makeData(data, metric: "angular")
        try python("""
            import sys, faiss, h5py
            x = h5py.File(sys.argv[1], "r")["train"][:]
            faiss.normalize_L2(x)
            inner = faiss.IndexIVFFlat(faiss.IndexFlatL2(16), 16, 12)
            index = faiss.IndexPreTransform(faiss.NormalizationTransform(16, 2.0), inner)
            index.train(x); index.add(x); faiss.write_index(index, sys.argv[2])
            """, data, built)
        let imported = try simjob("import", built, "--output", index, "--source", data)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("IVF-Flat nlist=12 angular"), "\(imported.stdout)")
        #expect(try simjob("search", index, "--queries", data, "--k", "10", "--nprobe", "3", "--output", result, "--quiet").status == 0)
        let identical = Double(try python(Self.compareScript, built, data, result, "angular", "3")) ?? 0
        #expect(identical >= 0.95, "only \(identical) of the queries have identical id lists")
        // Every cell probed: the distances are those of exact search (numpy, float64).
        let all = folder.file("all.hdf5")
        #expect(try simjob("search", index, "--queries", data, "--k", "10", "--nprobe", "12", "--output", all, "--quiet").status == 0)
        let gap = try python("""
            import sys, h5py, numpy as np
            f = h5py.File(sys.argv[1], "r"); x, q = f["train"][:].astype("f8"), f["test"][:].astype("f8")
            x /= np.linalg.norm(x, axis=1, keepdims=True); q /= np.linalg.norm(q, axis=1, keepdims=True)
            truth = np.sort(1 - q @ x.T, axis=1)[:, :10]
            print(np.abs(h5py.File(sys.argv[2], "r")["search/distances"][:] - truth).max())
            """, data, all)
        #expect((Double(gap) ?? 1) <= 1e-5, "exact search differs by \(gap)")
    }

    @Test("damaged indexes are not exported; files FAISS could not have written, or types simjob lacks, are not imported")
    func refusals() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("index.hdf5"), exported = folder.file("index.faiss")
        try makeData(data, metric: "euclidean")
        #expect(try simjob("train", data, "--nlist", "8", "--m", "4", "--nbits", "4", "--pq-iterations", "4", "--output", index, "--quiet").status == 0)
        #expect(try simjob("export", index, "--format", "faiss", "--output", exported).status == 0)

        // A damaged simjob index: refused by the load, nothing written.
        let altered = folder.file("altered.hdf5"), out = folder.file("out.faiss")
        try FileManager.default.copyItem(atPath: index, toPath: altered)
        try python("""
            import sys, h5py
            with h5py.File(sys.argv[1], "r+") as f:
                c = f["index/codes"][:]; c[3, 2] = 200; f["index/codes"][:] = c
            """, altered)
        try expectOneLineError(["export", altered, "--format", "faiss", "--output", out], mentions: [altered, "index/codes", "row 3, column 2"])
        // The input as the output, and a format the type has none of.
        try expectOneLineError(["export", index, "--format", "faiss", "--output", index], mentions: [index, "input"])
        try expectOneLineError(["export", index, "--format", "hnswlib", "--output", out], mentions: ["hnswlib", "IVF-PQ"])
        #expect(!FileManager.default.fileExists(atPath: out))

        // Truncated, a flipped list size, custom ids, another index type, a missing file.
        let bytes = FileManager.default.contents(atPath: exported)!
        let truncated = folder.file("truncated.faiss")
        FileManager.default.createFile(atPath: truncated, contents: bytes.prefix(bytes.count - 100))
        let target = folder.file("imported.hdf5")
        try expectOneLineError(["import", truncated, "--output", target], mentions: [truncated, "ends inside"])
        let tail = folder.file("tail.faiss")
        FileManager.default.createFile(atPath: tail, contents: bytes + Data([1, 2, 3]))
        try expectOneLineError(["import", tail, "--output", target], mentions: [tail, "3 bytes follow"])
        let others = folder.file("others")
        try python("""
            import sys, faiss, h5py, numpy as np
            x = h5py.File(sys.argv[1], "r")["train"][:]
            flat = faiss.IndexFlatL2(16); flat.add(x); faiss.write_index(flat, sys.argv[2] + "-flat")
            ivf = faiss.IndexIVFPQ(faiss.IndexFlatL2(16), 16, 8, 4, 4); ivf.train(x)
            ivf.add_with_ids(x, np.arange(len(x)) * 7); faiss.write_index(ivf, sys.argv[2] + "-ids")
            """, data, others)
        try expectOneLineError(["import", others + "-flat", "--output", target], mentions: [others + "-flat", "'IxF2'"])
        try expectOneLineError(["import", others + "-ids", "--output", target], mentions: [others + "-ids", "custom ids"])
        try expectOneLineError(["import", folder.file("missing.faiss"), "--output", target], mentions: ["missing.faiss", "no such file"])
        try expectOneLineError(["import", exported, "--output", exported], mentions: [exported, "input"])
        #expect(FileManager.default.contents(atPath: exported) == bytes, "the FAISS file was changed")
        // An import whose source has another shape than the index.
        let small = folder.file("small.hdf5")
        try python("import sys, h5py, numpy as np\nwith h5py.File(sys.argv[1], 'w') as f: f['train'] = np.zeros((10, 16), 'f4')", small)
        try expectOneLineError(["import", exported, "--output", target, "--source", small], mentions: [small, "does not match"])
        #expect(!FileManager.default.fileExists(atPath: target))
        // A full disk (a file-size limit fails writes as one does): one line, the previous file kept.
        let flat = folder.file("flat.hdf5"), previous = folder.file("previous.faiss")
        #expect(try simjob("train", data, "--type", "ivfflat", "--nlist", "8", "--output", flat, "--quiet").status == 0)
        FileManager.default.createFile(atPath: previous, contents: Data("the previous export".utf8))
        let full = try runProgram("/bin/sh", ["-c", "ulimit -f 64; exec \"$0\" \"$@\"", simjobPath, "export", flat, "--format", "faiss", "--output", previous])
        #expect(full.status == 1 && full.stderr.split(separator: "\n").count == 1 && full.stderr.contains(previous), "\(full.stderr)")
        #expect(full.stderr.contains("too large") || full.stderr.contains("no space"), "\(full.stderr)")
        #expect(FileManager.default.contents(atPath: previous) == Data("the previous export".utf8), "the previous export changed")
        #expect(folder.contents.allSatisfy { !$0.contains(OutputPath.partialMarker) })
    }
}
