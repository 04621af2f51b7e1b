import Foundation
import Testing

/// Bad input gets one clear line naming the problem, and a non-zero exit.
@Suite("CLI errors")
struct CLIErrorTests {
    /// Runs simjob expecting failure; checks the one-line message mentions every fragment.
    func expectFailure(_ arguments: [String], mentions fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try simjob(arguments)
        #expect(result.status != 0, "exit status 0 for \(arguments)", sourceLocation: sourceLocation)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "expected one line, got: \(result.stderr)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(result.stderr.contains(fragment), "'\(fragment)' not in: \(result.stderr)", sourceLocation: sourceLocation)
        }
    }

    /// A small valid dataset written by h5py, plus broken variants of it.
    func fixtures(_ folder: TemporaryFolder) throws {
        try python("""
            import sys, h5py, numpy as np
            folder = sys.argv[1]
            rng = np.random.default_rng(0)
            with h5py.File(folder + "/good.hdf5", "w") as f:
                f["train"] = rng.standard_normal((50, 8)).astype("f4")
                f["test"] = rng.standard_normal((5, 8)).astype("f4")
                f["vector"] = np.zeros(50, dtype="f4")
                f["cube"] = np.zeros((4, 4, 4), dtype="f4")
                f["names"] = np.array([b"a", b"b"])
                f.attrs["distance"] = "euclidean"
            bad = rng.standard_normal((50, 8)).astype("f4")
            bad[17, 3] = np.nan
            with h5py.File(folder + "/nan.hdf5", "w") as f:
                f["train"] = bad
                f["test"] = bad[:5]
                f.attrs["distance"] = "euclidean"
            inf = rng.standard_normal((50, 8))
            inf[33, 0] = np.inf
            with h5py.File(folder + "/inf.hdf5", "w") as f:
                f["train"] = inf
                f.attrs["distance"] = "euclidean"
            with h5py.File(folder + "/nometric.hdf5", "w") as f:
                f["train"] = rng.standard_normal((50, 8)).astype("f4")
            open(folder + "/text.hdf5", "w").write("this is not HDF5\\n" * 100)
            data = open(folder + "/good.hdf5", "rb").read()
            open(folder + "/truncated.hdf5", "wb").write(data[: len(data) // 3])
            """, folder.path)
    }

    @Test("missing, non-HDF5 and truncated files")
    func badFiles() throws {
        let folder = TemporaryFolder()
        try fixtures(folder)
        let out = folder.file("out.hdf5")
        try expectFailure(["info", folder.file("nope.hdf5")], mentions: ["nope.hdf5", "no such file"])
        try expectFailure(["knn-graph", folder.file("nope.hdf5"), "--k", "3", "--output", out], mentions: ["no such file"])
        try expectFailure(["info", folder.file("text.hdf5")], mentions: ["text.hdf5", "not an HDF5 file"])
        try expectFailure(["knn-graph", folder.file("truncated.hdf5"), "--k", "3", "--output", out], mentions: ["truncated.hdf5", "the file is truncated (", "bytes of the", "its header records"])
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("missing datasets, wrong ranks and element types")
    func badDatasets() throws {
        let folder = TemporaryFolder()
        try fixtures(folder)
        let good = folder.file("good.hdf5"), out = folder.file("out.hdf5")
        try expectFailure(["knn-graph", good + ":embeddings", "--k", "3", "--output", out], mentions: ["good.hdf5", "no dataset 'embeddings'"])
        try expectFailure(["knn-graph", good + ":vector", "--k", "3", "--output", out], mentions: ["good.hdf5:vector", "expected a 2-D dataset", "1-D"])
        try expectFailure(["knn-graph", good + ":cube", "--k", "3", "--output", out], mentions: ["good.hdf5:cube", "3-D", "(4, 4, 4)"])
        try expectFailure(["knn-graph", good + ":names", "--k", "1", "--output", out], mentions: ["good.hdf5:names"])
        try expectFailure(["knn-graph", folder.file("nometric.hdf5"), "--k", "3", "--output", out], mentions: ["no 'distance' attribute", "--metric"])
        try expectFailure(["knn-graph", good, "--k", "3", "--output", folder.file("no/such/folder/out.hdf5")], mentions: ["does not exist"])
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("NaN and Inf rows are reported by their first row")
    func nonFiniteRows() throws {
        let folder = TemporaryFolder()
        try fixtures(folder)
        let out = folder.file("out.hdf5")
        try expectFailure(["knn-graph", folder.file("nan.hdf5"), "--k", "3", "--output", out], mentions: ["nan.hdf5:train", "row 17", "NaN"])
        try expectFailure(["groundtruth", folder.file("nan.hdf5"), "--k", "3", "--output", out], mentions: ["row 17", "NaN"])
        try expectFailure(["knn-graph", folder.file("inf.hdf5"), "--k", "3", "--output", out], mentions: ["inf.hdf5:train", "row 33", "infinite"])
        try expectFailure(["info", "--check", folder.file("inf.hdf5")], mentions: ["row 33"])
        // Streaming in small chunks finds the same row.
        try expectFailure(["knn-graph", folder.file("nan.hdf5"), "--k", "3", "--output", out, "--memory-limit", "1K", "--block", "16"], mentions: ["row 17"])
        #expect(folder.contents.allSatisfy { !$0.hasPrefix("out") && !$0.hasPrefix(".out") })
    }

    @Test("k larger than the set, and bad options")
    func badParameters() throws {
        let folder = TemporaryFolder()
        try fixtures(folder)
        let good = folder.file("good.hdf5"), out = folder.file("out.hdf5")
        try expectFailure(["knn-graph", good, "--k", "50", "--output", out], mentions: ["k = 50", "n - 1 = 49"])
        try expectFailure(["groundtruth", good, "--k", "51", "--output", out], mentions: ["k = 51", "50 rows"])
        // Argument errors are one line too, pointing at the command's help.
        try expectFailure(["knn-graph", good, "--k", "3"], mentions: ["--output", "simjob help knn-graph"])
        try expectFailure(["knn-graph", good, "--k", "three", "--output", out], mentions: ["three", "--k"])
        let zero = try simjob("knn-graph", good, "--k", "0", "--output", out)
        #expect(zero.status != 0 && zero.stderr.contains("--k must be between 1 and 100000 (got 0)"))
        let metric = try simjob("knn-graph", good, "--k", "3", "--metric", "hamming", "--output", out)
        #expect(metric.status != 0 && metric.stderr.contains("hamming"))
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
