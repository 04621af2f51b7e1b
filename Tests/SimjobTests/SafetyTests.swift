import Foundation
import Testing
import SimjobHDF5

/// A careless or hostile user: outputs that would destroy something, inputs that lie, full disks,
/// killed runs, files other tools wrote or hold open. Each case gets one clear line, a non-zero
/// exit, and leaves inputs and previous outputs as they were.
@Suite("Outputs and inputs that cannot destroy anything")
struct SafetyTests {
    /// Expects failure with exactly one stderr line holding every fragment.
    func expectRefused(_ arguments: [String], mentions fragments: [String], environment: [String: String]? = nil,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let quiet = arguments.first == "info" ? [] : ["--quiet"]
        let result = try runProgram(simjobPath, arguments + quiet, environment: environment)
        #expect(result.status == 1, "exit \(result.status) for \(arguments): \(result.stderr)", sourceLocation: sourceLocation)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("error: "), "expected one error line, got: \(result.stderr)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(result.stderr.contains(fragment), "'\(fragment)' not in: \(result.stderr)", sourceLocation: sourceLocation)
        }
    }

    /// Files left in a folder by simjob's temporary outputs.
    func partials(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.contains(OutputPath.partialMarker) }
    }

    func generate(_ path: String, n: Int = 400, dim: Int = 16) throws {
        let result = try simjob("generate", path, "--n", String(n), "--queries", "20", "--dim", String(dim), "--k", "10", "--quiet")
        #expect(result.status == 0, "\(result.stderr)")
    }

    /// What every stopped-run test starts from: a set large enough for a graph to be stopped
    /// mid-way (30,000 x 64) and an output that already holds a previous version.
    func stoppedRunFixture() throws -> (folder: TemporaryFolder, data: String, output: String) {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        try generate(data, n: 30000, dim: 64)
        let output = folder.file("graph.hdf5")
        FileManager.default.createFile(atPath: output, contents: Data("previous".utf8))
        return (folder, data, output)
    }

    @Test("an output that is an input, through its own path, a symlink or a hard link, is refused for every command")
    func inputAsOutput() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        try generate(data)
        symlink(data, folder.file("link.hdf5"))
        link(data, folder.file("hard.hdf5"))
        let before = fileDigest(data)
        for alias in [data, folder.file("link.hdf5"), folder.file("hard.hdf5")] {
            let commands: [[String]] = [
                ["knn-graph", data, "--k", "5", "--output", alias],
                ["knn-graph", data, "--k", "5", "--method", "approx", "--output", alias],
                ["groundtruth", data, "--k", "5", "--output", alias],
                ["dedup", data, "--threshold", "0.1", "--output", alias],
                ["dedup", data, "--threshold", "0.1", "--output", folder.file("d.hdf5"), "--write-kept", alias],
                ["kmeans", data, "--k", "4", "--output", alias],
                ["train", data, "--nlist", "4", "--m", "4", "--output", alias],
            ]
            for command in commands {
                try expectRefused(command, mentions: ["is an input of this command", "choose another output"])
            }
        }
        #expect(fileDigest(data) == before, "the input changed")
        // Searching an index into the index, or into the queries' file.
        let index = folder.file("index.hdf5")
        #expect(try simjob("train", data, "--nlist", "4", "--m", "4", "--output", index, "--quiet").status == 0)
        let indexBefore = fileDigest(index)
        try expectRefused(["search", index, "--queries", data, "--k", "3", "--nprobe", "2", "--output", index], mentions: ["is an input"])
        try expectRefused(["search", index, "--queries", data, "--k", "3", "--nprobe", "2", "--output", data], mentions: ["is an input"])
        try expectRefused(["evaluate", data, "--index", index, "--k", "3", "--nprobe", "1", "--output", index], mentions: ["is an input"])
        #expect(fileDigest(index) == indexBefore && fileDigest(data) == before)
        // One path for two outputs.
        try expectRefused(["dedup", data, "--threshold", "0.1", "--output", folder.file("same.hdf5"), "--write-kept", folder.file("same.hdf5")],
                          mentions: ["given for two outputs"])
        #expect(!FileManager.default.fileExists(atPath: folder.file("same.hdf5")))
        #expect(partials(folder.path).isEmpty)
    }

    @Test("devices, FIFOs, sockets, folders and missing folders are refused as outputs, and stay what they were")
    func specialOutputs() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        try generate(data)
        mkfifo(folder.file("fifo"), 0o644)
        try python("""
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])
            """, folder.file("socket"))
        let cases: [(String, String)] = [
            ("/dev/null", "is a device"), ("/dev/full", "is a device"), (folder.file("fifo"), "is a FIFO"),
            (folder.file("socket"), "is a socket"), (folder.path, "is a directory"),
            (folder.file("missing/out.hdf5"), "output folder"),
        ]
        for (output, fragment) in cases {
            try expectRefused(["knn-graph", data, "--k", "5", "--output", output], mentions: [output, fragment])
            try expectRefused(["knn-graph", data, "--k", "5", "--method", "approx", "--dimension", "8", "--output", output], mentions: [output, fragment])
            try expectRefused(["generate", output, "--n", "10", "--queries", "1", "--dim", "4"], mentions: [fragment])
        }
        var info = stat()
        #expect(stat("/dev/null", &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR, "/dev/null is no longer a device")
        #expect(lstat(folder.file("fifo"), &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO)
        #expect(partials(folder.path).isEmpty && partials("/dev").isEmpty)
    }

    @Test("a symlink output replaces the file it points to and stays a link")
    func symlinkOutput() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        try generate(data)
        try FileManager.default.createDirectory(atPath: folder.file("runs"), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: folder.file("runs/graph-1.hdf5"), contents: Data("old".utf8))
        symlink("runs/graph-1.hdf5", folder.file("latest.hdf5"))  // relative, as users make them
        let result = try simjob("knn-graph", data, "--k", "5", "--output", folder.file("latest.hdf5"), "--quiet")
        #expect(result.status == 0, "\(result.stderr)")
        var info = stat()
        #expect(lstat(folder.file("latest.hdf5"), &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK, "the link was replaced")
        let rows = try python("import h5py, sys; print(h5py.File(sys.argv[1])['knn_graph/neighbors'].shape[0])", folder.file("runs/graph-1.hdf5"))
        #expect(rows == "400")
        // A dangling link creates its target.
        symlink(folder.file("runs/graph-2.hdf5"), folder.file("next.hdf5"))
        #expect(try simjob("knn-graph", data, "--k", "5", "--output", folder.file("next.hdf5"), "--quiet").status == 0)
        #expect(FileManager.default.fileExists(atPath: folder.file("runs/graph-2.hdf5")))
    }

    /// Runs `command` with its output on a full file system: one line naming the output and the
    /// cause, the previous output byte for byte as it was, no temporary file left.
    func expectFullDiskHandled(folder: String, data: String, prefix: [String] = [], environment: [String: String]? = nil) throws {
        let output = folder + "/graph.hdf5"
        FileManager.default.createFile(atPath: output, contents: Data("the previous output".utf8))
        let before = fileDigest(output)
        let commands: [[String]] = [
            ["knn-graph", data, "--k", "10", "--output", output],
            // 8,000 x 70 neighbours (2.2 MB a dataset): chunks compressed in parallel, written raw.
            ["knn-graph", data, "--k", "70", "--output", output],
            // The approximate graph in a reduced space (projection, layout in place, joins).
            ["knn-graph", data, "--k", "10", "--method", "approx", "--dimension", "16", "--output", output],
            ["generate", output, "--n", "20000", "--queries", "10", "--dim", "32", "--k", "0"],
            ["train", data, "--nlist", "8", "--m", "16", "--output", output],
        ]
        for command in commands {
            let result = try runProgram(prefix.isEmpty ? simjobPath : prefix[0], Array(prefix.dropFirst()) + command + ["--quiet"], environment: environment)
            #expect(result.status == 1, "exit \(result.status) for \(command): \(result.stderr)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains(output), "\(result.stderr)")
            #expect(result.stderr.contains("no space left on device") || result.stderr.contains("file too large"), "\(result.stderr)")
            #expect(fileDigest(output) == before, "the previous output changed")
            #expect(partials(folder).isEmpty, "temporary files left: \(partials(folder))")
        }
    }

    @Test("a full disk is one line naming the output, with the previous output intact")
    func fullDisk() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        try generate(data, n: 8000, dim: 32)
        // A file-size limit makes writes fail as a full disk does, without privileges.
        let limited = folder.file("limited")
        try FileManager.default.createDirectory(atPath: limited, withIntermediateDirectories: true)
        try expectFullDiskHandled(folder: limited, data: data, prefix: ["/bin/sh", "-c", "ulimit -f 64; exec \"$0\" \"$@\"", simjobPath])
        // A real full file system: a small tmpfs (CI runs as root; elsewhere the limit above stands in).
        if getuid() == 0 {
            let mount = folder.file("tmpfs")
            try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
            let mounted = try runProgram("/bin/mount", ["-t", "tmpfs", "-o", "size=128k", "tmpfs", mount])
            #expect(mounted.status == 0, "mount failed: \(mounted.stderr)")
            defer { _ = try? runProgram("/bin/umount", [mount]) }
            if mounted.status == 0 { try expectFullDiskHandled(folder: mount, data: data) }
        }
    }

    @Test("temporary files of killed runs are removed by the next command on the same output; live ones are kept")
    func stalePartials() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        try generate(data)
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let hostName = String(cString: host)
        let stale = folder.file(".graph.hdf5\(OutputPath.partialMarker)\(hostName)-\(dead.processIdentifier)")
        let live = folder.file(".graph.hdf5\(OutputPath.partialMarker)\(hostName)-\(getpid())")
        let other = folder.file(".other.hdf5\(OutputPath.partialMarker)\(hostName)-\(dead.processIdentifier)")
        for path in [stale, live, other] { FileManager.default.createFile(atPath: path, contents: Data("partial".utf8)) }
        #expect(try simjob("knn-graph", data, "--k", "5", "--output", folder.file("graph.hdf5"), "--quiet").status == 0)
        #expect(!FileManager.default.fileExists(atPath: stale), "the killed run's temporary file is still there")
        #expect(FileManager.default.fileExists(atPath: live), "a running process's temporary file was removed")
        #expect(FileManager.default.fileExists(atPath: other), "another output's temporary file was removed")
    }

    @Test("SIGTERM and SIGHUP stop at a block boundary like SIGINT: conventional exit status, nothing left", arguments: [SIGINT, SIGTERM, SIGHUP])
    func signals(signal: Int32) throws {
        let (folder, data, output) = try stoppedRunFixture()
        let run = try BackgroundSimjob(["knn-graph", data, "--k", "10", "--block", "256", "--threads", "1", "--output", output, "--quiet"])
        let started = waitFor(timeout: 60) { !partials(folder.path).isEmpty }
        #expect(started, "the command never created its temporary output")
        #expect(run.process.isRunning, "the command finished before the signal")
        kill(run.process.processIdentifier, signal)
        let result = run.finish()
        #expect(result.status == 128 + signal, "exit \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("cancelled"), "\(result.stderr)")
        #expect(partials(folder.path).isEmpty, "temporary files left: \(partials(folder.path))")
        #expect(FileManager.default.contents(atPath: output) == Data("previous".utf8), "the previous output changed")
    }

    @Test("a spilled approximate graph killed outright (SIGKILL) leaves no spill file, keeps the previous output and the input; the next run finishes")
    func spilledGraphKilled() throws {
        let (folder, data, output) = try stoppedRunFixture()
        let input = fileDigest(data)
        // 7.3 MiB of vectors and about 12.4 MiB of state: 16M spills the vectors.
        let options = ["--k", "10", "--method", "approx", "--memory-limit", "16M", "--threads", "1", "--output", output, "--quiet"]
        let run = try BackgroundSimjob(["knn-graph", data, "--nprobe", "8", "--rounds", "12"] + options)
        // Killed once the spill files are mapped (they are unlinked, so only the process's map shows them).
        let mapped = waitFor(timeout: 60) {
            ((try? String(contentsOfFile: "/proc/\(run.process.processIdentifier)/maps", encoding: .utf8)) ?? "").contains(".simjob-spill-")
        }
        #expect(mapped, "the command never mapped a spill file")
        #expect(run.process.isRunning, "the command finished before the kill")
        kill(run.process.processIdentifier, SIGKILL)
        _ = run.finish()
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(!left.contains { $0.contains(".simjob-spill-") }, "spill files left: \(left)")
        #expect(FileManager.default.contents(atPath: output) == Data("previous".utf8), "the previous output changed")
        #expect(fileDigest(data) == input, "the input changed")
        let again = try simjob(["knn-graph", data] + options)
        #expect(again.status == 0 && again.stdout.contains("spilled to disk"), "\(again.stdout) \(again.stderr)")
        #expect(partials(folder.path).isEmpty, "temporary files left: \(partials(folder.path))")
    }

    @Test("the approximate graph in a reduced space: a stop mid-run leaves nothing and keeps the previous output; a finished run leaves the input as it was")
    func approximateGraphStopped() throws {
        let (folder, data, output) = try stoppedRunFixture()
        let input = fileDigest(data)
        let run = try BackgroundSimjob(["knn-graph", data, "--k", "10", "--method", "approx", "--dimension", "32", "--nprobe", "8", "--rounds", "12",
                                        "--threads", "1", "--output", output, "--quiet"])
        let started = waitFor(timeout: 60) { !partials(folder.path).isEmpty }
        #expect(started, "the command never created its temporary output")
        #expect(run.process.isRunning, "the command finished before the signal")
        kill(run.process.processIdentifier, SIGINT)
        let result = run.finish()
        #expect(result.status == 128 + SIGINT, "exit \(result.status): \(result.stderr)")
        #expect(partials(folder.path).isEmpty, "temporary files left: \(partials(folder.path))")
        #expect(FileManager.default.contents(atPath: output) == Data("previous".utf8), "the previous output changed")
        // Rows are laid out by cell in memory only: the input file is untouched.
        let finished = try simjob("knn-graph", data, "--k", "10", "--method", "approx", "--dimension", "32", "--output", output, "--quiet")
        #expect(finished.status == 0, "\(finished.stderr)")
        #expect(fileDigest(data) == input, "the input changed")
    }

    @Test("an altered index is refused on load, naming the dataset and the first bad entry")
    func alteredIndex() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5"), index = folder.file("index.hdf5")
        try generate(data)
        #expect(try simjob("train", data, "--nlist", "4", "--m", "4", "--nbits", "4", "--output", index, "--quiet").status == 0)
        let alterations: [(String, String, [String])] = [
            ("ids_range", "g['ids'][7] = 100000", ["index/ids", "entry 7 is 100000", "outside 0..<400"]),
            ("ids_negative", "g['ids'][0] = -3", ["index/ids", "entry 0 is -3"]),
            ("ids_repeat", "ids = g['ids'][:]; ids[5] = ids[4]; g['ids'][:] = ids", ["index/ids", "entry 5 repeats id"]),
            ("codes", "c = g['codes'][:]; c[3, 2] = 200; g['codes'][:] = c", ["index/codes", "row 3, column 2 is 200", "2^nbits = 16"]),
            ("codebook_nan", "b = g['pq_codebooks'][:]; b[9, 1] = float('nan'); g['pq_codebooks'][:] = b", ["index/pq_codebooks", "row 9", "NaN"]),
            ("centroid_inf", "c = g['coarse_centroids'][:]; c[2, 0] = float('inf'); g['coarse_centroids'][:] = c", ["index/coarse_centroids", "row 2", "infinite"]),
            ("offsets", "o = g['list_offsets'][:]; o[2] = o[1] - 1; g['list_offsets'][:] = o", ["index/list_offsets", "entry 2"]),
            ("offsets_end", "o = g['list_offsets'][:]; o[-1] = 399; g['list_offsets'][:] = o", ["index/list_offsets"]),
            ("nbits", "g.attrs['nbits'] = 12", ["--nbits", "nbits = 12"]),
            ("shape", "del g['codes']; g['codes'] = np.zeros((400, 3), dtype='u1')", ["index/codes", "shape (400, 3)"]),
        ]
        for (name, edit, fragments) in alterations {
            let altered = folder.file("\(name).hdf5")
            try FileManager.default.copyItem(atPath: index, toPath: altered)
            try python("""
                import sys, h5py, numpy as np
                with h5py.File(sys.argv[1], "r+") as f:
                    g = f["index"]
                    \(edit)
                """, altered)
            let relevant = fragments.filter { !$0.hasPrefix("--") }
            try expectRefused(["search", altered, "--queries", data, "--k", "5", "--nprobe", "2", "--output", folder.file("s.hdf5")],
                              mentions: relevant + [altered])
            try expectRefused(["evaluate", data, "--index", altered, "--k", "5", "--nprobe", "2", "--output", folder.file("r.hdf5")],
                              mentions: relevant)
        }
        #expect(!FileManager.default.fileExists(atPath: folder.file("s.hdf5")))
    }

    @Test("a large set checked on several threads names its first unusable row, whichever thread found it")
    func unusableRowsInLargeSets() throws {
        let folder = TemporaryFolder()
        // 140,000 x 32 (4.5M values: the check splits into halves at row 70,000).
        for (bad, first) in [([69_999, 70_000], 69_999), ([100_000, 120_000], 100_000), ([3, 139_999], 3)] {
            let path = folder.file("bad-\(first).hdf5")
            try python("""
                import sys, h5py, numpy as np
                x = np.random.default_rng(2).standard_normal((140000, 32)).astype("f4")
                a, b = int(sys.argv[2]), int(sys.argv[3])
                x[a, 7] = np.nan
                x[b, 0] = np.inf
                with h5py.File(sys.argv[1], "w") as f:
                    f["train"] = x; f.attrs["distance"] = "euclidean"
                """, path, String(bad[0]), String(bad[1]))
            try expectRefused(["knn-graph", path, "--k", "5", "--method", "approx", "--threads", "2", "--output", folder.file("g.hdf5")],
                              mentions: ["row \(first) ", "train"])
        }
    }

    @Test("values whose squares overflow float32 are refused at read with the first bad row; info --check reports them")
    func hugeValues() throws {
        let folder = TemporaryFolder()
        let huge = folder.file("huge.hdf5")
        try python("""
            import sys, h5py, numpy as np
            x = np.random.default_rng(1).standard_normal((100, 8)).astype("f4")
            x[41, 5] = 3e19
            x[60, 0] = 1e30
            with h5py.File(sys.argv[1], "w") as f:
                f["train"] = x; f["test"] = x[:5]; f.attrs["distance"] = "euclidean"
            """, huge)
        try expectRefused(["knn-graph", huge, "--k", "5", "--output", folder.file("g.hdf5")], mentions: ["row 41", "too large", "train"])
        try expectRefused(["info", huge, "--check"], mentions: ["row 41", "too large"])
        // Just below the bound still works, with finite distances.
        let large = folder.file("large.hdf5")
        try python("""
            import sys, h5py, numpy as np
            x = np.random.default_rng(1).standard_normal((100, 8)).astype("f4") * 1e17
            with h5py.File(sys.argv[1], "w") as f:
                f["train"] = x; f.attrs["distance"] = "euclidean"
            """, large)
        let graph = folder.file("g.hdf5")
        #expect(try simjob("knn-graph", large, "--k", "5", "--output", graph, "--quiet").status == 0)
        let check = try python("""
            import sys, h5py, numpy as np
            d = h5py.File(sys.argv[1])["knn_graph/distances"][:]
            print(bool(np.isfinite(d).all()), int((h5py.File(sys.argv[1])["knn_graph/neighbors"][:] >= 0).all()))
            """, graph)
        #expect(check == "True 1")
    }

    @Test("files of other tools: a filter this HDF5 lacks is named; a file held open for writing is reported as locked")
    func otherTools() throws {
        let folder = TemporaryFolder()
        let filtered = folder.file("filtered.hdf5")
        try python("""
            import sys, h5py, hdf5plugin, numpy as np
            x = np.random.default_rng(1).standard_normal((100, 8)).astype("f4")
            with h5py.File(sys.argv[1], "w") as f:
                f.create_dataset("train", data=x, chunks=(50, 8), **hdf5plugin.Blosc())
                f.create_dataset("test", data=x[:5], chunks=(5, 8), **hdf5plugin.BZip2())
                f.attrs["distance"] = "euclidean"
            """, filtered)
        try expectRefused(["knn-graph", filtered, "--k", "3", "--output", folder.file("g.hdf5")], mentions: ["filtered.hdf5:train", "'blosc' filter", "not damaged"])
        try expectRefused(["knn-graph", filtered + ":test", "--k", "3", "--output", folder.file("g.hdf5")], mentions: ["'bzip2' filter"])

        let held = folder.file("held.hdf5")
        try generate(held)
        let ready = folder.file("ready")
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        writer.arguments = ["python3", "-c", """
            import sys, time, h5py
            f = h5py.File(sys.argv[1], "r+")
            open(sys.argv[2], "w").close()
            time.sleep(30)
            """, held, ready]
        writer.standardError = FileHandle.nullDevice
        try writer.run()
        defer { kill(writer.processIdentifier, SIGKILL); writer.waitUntilExit() }
        #expect(waitFor(timeout: 30) { FileManager.default.fileExists(atPath: ready) }, "the writer never opened the file")
        try expectRefused(["knn-graph", held, "--k", "3", "--output", folder.file("g.hdf5")], mentions: ["held.hdf5", "locked", "another process has it open for writing"])
        try expectRefused(["info", held], mentions: ["locked"])
    }

    @Test("numeric options out of range, negative or fractional say the allowed range")
    func optionBounds() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        try generate(data)
        let out = folder.file("out.hdf5")
        let cases: [([String], String)] = [
            (["knn-graph", data, "--k", "-5", "--output", out], "--k must be between 1 and 100000 (got -5)"),
            (["knn-graph", data, "--k", "5", "--block", "100000000", "--output", out], "--block must be between 16 and 65536 (got 100000000)"),
            (["knn-graph", data, "--k", "5", "--threads", "0", "--output", out], "--threads must be between 1 and 4096 (got 0)"),
            (["knn-graph", data, "--k=-1", "--output", out], "--k must be between 1 and 100000 (got -1)"),
            (["train", data, "--nlist", "-4", "--m", "4", "--output", out], "--nlist must be between 1 and"),
            (["generate", out, "--n", "10", "--dim", "2.5"], "--dim must be a whole number"),
            (["dedup", data, "--threshold", "0.1,-0.2", "--output", out], "--threshold must be at least 0 (got -0.2)"),
            (["evaluate", data, "--index", data, "--nprobe", "1,-2", "--output", out], "--nprobe must be between 1 and"),
            (["knn-graph", data, "--k", "5", "--memory-limit", "1e30T", "--output", out], "'1e30T' is invalid for '--memory-limit"),
            (["knn-graph", data, "--k", "5", "--memory-limit", "-2G", "--output", out], "'-2G' is invalid for '--memory-limit"),
        ]
        for (arguments, fragment) in cases {
            let result = try simjob(arguments)
            #expect(result.status != 0, "\(arguments)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1 && result.stderr.contains(fragment), "\(arguments): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("a symlink with a relative target, given from its own folder, resolves there (and an input behind it is refused)")
    func relativeSymlinkFromCurrentFolder() throws {
        let folder = TemporaryFolder()
        try generate(folder.file("d.hdf5"))
        symlink("d.hdf5", folder.file("link.hdf5"))
        symlink("out-target.hdf5", folder.file("out.hdf5"))
        let before = fileDigest(folder.file("d.hdf5"))
        let refused = try runProgram(simjobPath, ["groundtruth", "d.hdf5", "--k", "5", "--output", "link.hdf5", "--quiet"], currentDirectory: folder.path)
        #expect(refused.status == 1 && refused.stderr.contains("is an input of this command"), "\(refused.stderr)")
        #expect(fileDigest(folder.file("d.hdf5")) == before)
        #expect(!FileManager.default.fileExists(atPath: "/d.hdf5") || fileDigest("/d.hdf5") != before, "written at the file system's root")
        let written = try runProgram(simjobPath, ["knn-graph", "d.hdf5", "--k", "5", "--output", "out.hdf5", "--quiet"], currentDirectory: folder.path)
        #expect(written.status == 0, "\(written.stderr)")
        var info = stat()
        #expect(lstat(folder.file("out.hdf5"), &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK)
        #expect(FileManager.default.fileExists(atPath: folder.file("out-target.hdf5")))
        #expect(!FileManager.default.fileExists(atPath: "/out-target.hdf5"))
    }

    @Test("evaluate: a plot or results folder colliding with the report or a file is refused before anything is written")
    func evaluateOutputsTogether() throws {
        let folder = TemporaryFolder()
        let data = folder.file("d.hdf5"), index = folder.file("idx.hdf5")
        try generate(data)
        #expect(try simjob("train", data, "--nlist", "4", "--m", "4", "--output", index, "--quiet").status == 0)
        let report = folder.file("ev.hdf5")
        FileManager.default.createFile(atPath: report, contents: Data("OLD".utf8))
        try expectRefused(["evaluate", data, "--index", index, "--k", "5", "--nprobe", "1", "--output", report, "--plot", report, "--latency-queries", "0"],
                          mentions: ["given for two outputs"])
        #expect(FileManager.default.contents(atPath: report) == Data("OLD".utf8), "the previous report changed")
        try expectRefused(["evaluate", data, "--index", index, "--k", "5", "--nprobe", "1", "--output", folder.file("ev2.hdf5"),
                           "--ann-benchmarks-results", data, "--latency-queries", "0"], mentions: ["is a file", "--ann-benchmarks-results"])
        #expect(!FileManager.default.fileExists(atPath: folder.file("ev2.svg")) && !FileManager.default.fileExists(atPath: folder.file("ev2.hdf5")))
        // A results file that cannot be written leaves no report, plot or results.
        let limited = folder.file("limited")
        try FileManager.default.createDirectory(atPath: limited, withIntermediateDirectories: true)
        let result = try runProgram("/bin/sh", ["-c", "ulimit -f 16; exec \"$0\" \"$@\"", simjobPath, "evaluate", data, "--index", index, "--k", "5",
                                                "--nprobe", "1,2,4", "--output", limited + "/ev.hdf5", "--ann-benchmarks-results", limited + "/abr",
                                                "--latency-queries", "0", "--quiet"])
        #expect(result.status == 1, "\(result.stderr)")
        let left = (FileManager.default.subpaths(atPath: limited) ?? []).filter { $0.hasSuffix(".hdf5") || $0.hasSuffix(".svg") || $0.contains("partial") }
        #expect(left.isEmpty, "left behind: \(left)")
    }

    @Test("index datasets of another element type are checked at their stored values")
    func indexElementTypes() throws {
        let folder = TemporaryFolder()
        let data = folder.file("d.hdf5"), index = folder.file("idx.hdf5")
        try generate(data)
        #expect(try simjob("train", data, "--nlist", "4", "--m", "4", "--output", index, "--quiet").status == 0)
        let edits: [(String, [String])] = [
            ("c = g['codes'][:].astype('i2'); c[1, 1] = 300; del g['codes']; g['codes'] = c", ["index/codes", "row 1, column 1 is 300"]),
            ("c = g['codes'][:].astype('i1'); c[0, 0] = -1; del g['codes']; g['codes'] = c", ["index/codes", "is -1"]),
            ("i = g['ids'][:].astype('f8') + 0.5; del g['ids']; g['ids'] = i", ["index/ids", "element type float64, expected integers"]),
            ("i = g['ids'][:].astype('i8'); i[3] = 2**40; del g['ids']; g['ids'] = i", ["index/ids", "entry 3 is 1099511627776"]),
            ("g.attrs['m'] = '4'", ["attribute 'm'", "expected one whole number"]),
            ("g.attrs['dimension'] = 1e300", ["attribute 'dimension'", "expected one whole number"]),
        ]
        for (number, (edit, fragments)) in edits.enumerated() {
            let altered = folder.file("altered-\(number).hdf5")
            try FileManager.default.copyItem(atPath: index, toPath: altered)
            try python("""
                import sys, h5py, numpy as np
                with h5py.File(sys.argv[1], "r+") as f:
                    g = f["index"]
                    \(edit)
                """, altered)
            try expectRefused(["search", altered, "--queries", data, "--k", "5", "--nprobe", "2", "--output", folder.file("s.hdf5")], mentions: fragments)
        }
    }

    @Test("odd but valid inputs and names: float16 vectors, a 245-character output name; dangling links and wrong attribute types named")
    func oddInputs() throws {
        let folder = TemporaryFolder()
        let data = folder.file("odd.hdf5")
        try python("""
            import sys, h5py, numpy as np
            x = np.random.default_rng(2).standard_normal((200, 8)).astype("f2")
            with h5py.File(sys.argv[1], "w") as f:
                f["train"] = x; f.attrs["distance"] = "euclidean"
                f["dangling"] = h5py.SoftLink("/nowhere")
            with h5py.File(sys.argv[2], "w") as f:
                f["train"] = x.astype("f4"); f.attrs["distance"] = 3
            """, data, folder.file("badattr.hdf5"))
        let long = folder.file(String(repeating: "f", count: 240) + ".hdf5")
        #expect(try simjob("knn-graph", data, "--k", "3", "--output", long, "--quiet").status == 0)
        let check = try python("""
            import sys, h5py, numpy as np
            x = h5py.File(sys.argv[1])["train"][:].astype("f8"); g = h5py.File(sys.argv[2])["knn_graph/neighbors"][:]
            d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1); np.fill_diagonal(d, np.inf)
            print(bool(np.allclose(np.sort(d, 1)[:, :3], np.take_along_axis(d, g.astype(int), 1), atol=1e-4)))
            """, data, long)
        #expect(check == "True")
        try expectRefused(["knn-graph", data + ":dangling", "--k", "3", "--output", folder.file("g.hdf5")], mentions: ["'dangling' is a link to nothing"])
        try expectRefused(["knn-graph", folder.file("badattr.hdf5"), "--k", "3", "--output", folder.file("g.hdf5")], mentions: ["'distance' attribute is 3, not text"])
        let help = try simjob("help", "frobnicate")
        #expect(help.status == 64 && help.stderr.hasPrefix("error: no command 'frobnicate'"), "\(help.stderr)")
    }

    @Test("two signals in quick succession: the conventional status and one error line, nothing left")
    func twoSignals() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        try generate(data, n: 30000, dim: 64)
        let run = try BackgroundSimjob(["knn-graph", data, "--k", "10", "--block", "256", "--threads", "1", "--output", folder.file("g.hdf5"), "--quiet"])
        #expect(waitFor(timeout: 60) { !partials(folder.path).isEmpty }, "the command never created its temporary output")
        kill(run.process.processIdentifier, SIGTERM)
        kill(run.process.processIdentifier, SIGTERM)
        let result = run.finish()
        #expect(result.status == 143, "exit \(result.status)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("error: "), "\(result.stderr)")
        #expect(partials(folder.path).isEmpty && !FileManager.default.fileExists(atPath: folder.file("g.hdf5")))
    }
}
