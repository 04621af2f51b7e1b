import Foundation
import Testing

/// The repository's `Jobs/` folder.
let jobsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Jobs").path

@Suite("Job files")
struct JobTests {
    /// Writes a job file into `folder` and returns its path.
    func job(_ text: String, in folder: TemporaryFolder, name: String = "job.yaml") -> String {
        folder.write(text, name: name)
    }

    func stepsRun(_ result: CommandResult) -> [String] {
        result.stderr.split(separator: "\n").compactMap { line in
            guard line.contains("): running"), let range = line.range(of: "] step ") else { return nil }
            return line[range.upperBound...].split(separator: " ")[1].description
        }
    }

    @Test("every example in Jobs/ runs end to end at reduced size")
    func examplesRun() throws {
        let folder = TemporaryFolder()
        let angular = folder.file("angular.hdf5"), corpus = folder.file("corpus.hdf5"), glove = folder.file("glove.hdf5")
        #expect(try simjob("generate", angular, "--n", "2000", "--queries", "10", "--dim", "16", "--metric", "angular", "--duplicates", "0.05", "--k", "0", "--quiet").status == 0)
        #expect(try simjob("generate", corpus, "--n", "3000", "--queries", "50", "--dim", "32", "--duplicates", "0.05", "--k", "0", "--quiet").status == 0)
        #expect(try simjob("generate", glove, "--n", "3000", "--queries", "40", "--dim", "100", "--metric", "angular", "--latent-dim", "10", "--k", "20", "--quiet").status == 0)
        // Reduced settings per example; an example missing here fails the test.
        let overrides: [String: [String]] = [
            "quickstart.yaml": ["--set", "approx_graph.partitions=6", "--set", "data.n=3000", "--set", "data.queries=50", "--set", "index.nlist=16",
                                "--set", "index.nbits=4", "--set", "index.pq_iterations=5",
                                "--set", "sweep.nprobe=[1, 4]", "--set", "sweep.latency_queries=5", "--set", "sweep.runs=1"],
            "recommendation-knn-graph.yaml": ["--input", "items=\(angular)", "--set", "neighbours.k=5"],
            "dedup-before-indexing.yaml": ["--input", "corpus=\(corpus)", "--set", "truth.k=20", "--set", "index.nlist=16",
                                           "--set", "index.nbits=4", "--set", "index.pq_iterations=5",
                                           "--set", "check.latency_queries=5", "--set", "check.runs=1"],
            "ann-benchmarks-evaluation.yaml": ["--input", "dataset=\(glove)", "--set", "ivf1024-pq20.nlist=16", "--set", "ivf1024-pq50.nlist=16",
                                               "--set", "ivf4096-pq50.nlist=32", "--set", "ivf1024-pq20.nbits=4", "--set", "ivf1024-pq50.nbits=4",
                                               "--set", "ivf4096-pq50.nbits=4", "--set", "ivf1024-pq20.pq_iterations=5",
                                               "--set", "ivf1024-pq50.pq_iterations=5", "--set", "ivf4096-pq50.pq_iterations=5",
                                               "--set", "sweep-ivf1024-pq20.runs=1", "--set", "sweep-ivf1024-pq50.runs=1", "--set", "sweep-ivf4096-pq50.runs=1", "--set", "sweep-ivf1024-pq20.nprobe=[1, 4]",
                                               "--set", "sweep-ivf1024-pq50.nprobe=[1, 4]", "--set", "sweep-ivf4096-pq50.nprobe=[1, 4]",
                                               "--set", "sweep-ivf1024-pq20.latency_queries=5", "--set", "sweep-ivf1024-pq50.latency_queries=5",
                                               "--set", "sweep-ivf4096-pq50.latency_queries=5"],
        ]
        let examples = try FileManager.default.contentsOfDirectory(atPath: jobsFolder).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(examples.count >= 4)
        for example in examples {
            guard let extra = overrides[example] else {
                Issue.record("Jobs/\(example) has no reduced-size run in this test")
                continue
            }
            let output = folder.file("out-" + example)
            let result = try simjob(["run", jobsFolder + "/" + example, "--output", output, "--quiet"] + extra)
            #expect(result.status == 0, "\(example): \(result.stderr)")
            #expect(result.stdout.contains("step(s) run, 0 up to date"), "\(example): \(result.stdout)")
            let state = try String(contentsOfFile: output + "/job-state.json", encoding: .utf8)
            for line in result.stdout.split(separator: "\n") where line.hasPrefix("      -> ") {
                let path = String(line.dropFirst(9))
                #expect(FileManager.default.fileExists(atPath: path), "\(example): missing output \(path)")
                #expect(state.contains(path), "\(example): \(path) not recorded in the state")
            }
        }
    }

    @Test("a broken job file lists every problem with its line, before any work")
    func brokenJobFile() throws {
        let folder = TemporaryFolder()
        let data = folder.file("data.hdf5")
        #expect(try simjob("generate", data, "--n", "100", "--queries", "5", "--dim", "12", "--k", "0", "--quiet").status == 0)
        let path = job("""
            name: broken
            output: \(folder.file("out"))
            colour: blue
            inputs:
              data: \(data)
            steps:
              - name: graph
                knn_graph: {input: data, k: 100}
              - name: index
                train:
                  input: data
                  nlsit: 16
                  m: 5
              - name: sweep
                evaluate: {input: data, index: nowhere, k: ten}
              - name: other
                knn_graph: {input: data, dataset: embeddings}
              - name: index
                dedup: {input: data}
              - frobnicate: {}
              - name: rough
                knn_graph: {input: data, k: 5, nprobe: 2}
              - name: check
                evaluate: {graph: graph, nprobe: [1]}
            """, in: folder)
        let result = try simjob("validate", path)
        #expect(result.status == 1)
        let expected: [(Int, String)] = [
            (3, "colour: unknown key"),
            (8, "steps[0] (graph).knn_graph.k: k = 100 must be between 1 and n - 1 = 99"),
            (12, "steps[1] (index).train.nlsit: unknown key (did you mean 'nlist'?)"),
            (13, "steps[1] (index).train.m: m = 5 must divide the dimension 12"),
            (15, "steps[2] (sweep).evaluate.index: 'nowhere' is neither an earlier step"),
            (15, "steps[2] (sweep).evaluate.k: expected a whole number"),
            (15, "no ground truth"),
            (17, "steps[3] (other).knn_graph.dataset"),
            (18, "steps[4].name: a step named 'index' comes earlier"),
            (19, "steps[4] (index).dedup.threshold: missing"),
            (20, "steps[5].frobnicate: unknown key"),
            (22, "steps[6] (rough).knn_graph.nprobe: applies to method approx only"),
            (24, "steps[7] (check).evaluate.sample: without truth, give sample"),
            (24, "steps[7] (check).evaluate.nprobe: does not apply when scoring a graph"),
        ]
        for (line, fragment) in expected {
            let found = result.stderr.split(separator: "\n").contains { $0.contains("job.yaml:\(line):") && $0.contains(fragment) }
            #expect(found, "no problem on line \(line) with '\(fragment)' in:\n\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.file("out")), "validation must not start any work")
        // The same problems stop `run` before it does anything.
        let run = try simjob("run", path)
        #expect(run.status == 1 && run.stderr.contains("colour") && !FileManager.default.fileExists(atPath: folder.file("out")))
        // A YAML syntax error is located too.
        let syntax = job("output: x\nsteps:\n  - generate: {n: 10\n", in: folder, name: "syntax.yaml")
        let parse = try simjob("validate", syntax)
        #expect(parse.status == 1 && parse.stderr.contains("syntax.yaml:") && parse.stderr.contains("YAML syntax"), "\(parse.stderr)")
    }

    func pipeline(_ folder: TemporaryFolder, output: String) -> String {
        job("""
            output: \(output)
            steps:
              - name: data
                generate: {n: 12000, queries: 10, dim: 32, duplicates: 0.02, k: 0, seed: 3}
              - name: graph
                knn_graph: {input: data, k: 5, block: 256}
              - name: dedup
                dedup: {input: data, threshold: 0.2, write_kept: true}
            """, in: folder, name: "pipeline.yaml")
    }

    /// Dataset contents of the pipeline's outputs, for comparing runs.
    func contents(_ output: String) throws -> String {
        try python("""
            import sys, h5py, hashlib
            digest = hashlib.sha256()
            for name in ["data.hdf5", "graph.hdf5", "dedup.hdf5", "dedup-kept.hdf5"]:
                f = h5py.File(sys.argv[1] + "/" + name, "r")
                def visit(path, obj):
                    if isinstance(obj, h5py.Dataset): digest.update(path.encode()); digest.update(obj[()].tobytes())
                f.visititems(visit)
            print(digest.hexdigest())
            """, output)
    }

    func waitForState(_ output: String, containing step: String, timeout: Double = 120, sourceLocation: SourceLocation = #_sourceLocation) {
        let found = waitFor(timeout: timeout) {
            (try? String(contentsOfFile: output + "/job-state.json", encoding: .utf8))?.contains("\"\(step)\"") == true
        }
        #expect(found, "step \(step) did not finish within \(timeout) s", sourceLocation: sourceLocation)
    }

    @Test("an interrupted job resumes from its last finished step and ends identical", arguments: [SIGINT, SIGKILL])
    func interruptedJobResumes(signal: Int32) throws {
        let folder = TemporaryFolder()
        let reference = folder.file("reference"), interrupted = folder.file("interrupted")
        let full = try simjob("run", pipeline(folder, output: reference), "--quiet")
        #expect(full.status == 0, "\(full.stderr)")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: simjobPath)
        process.arguments = ["run", pipeline(folder, output: interrupted), "--quiet"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        waitForState(interrupted, containing: "data")
        // Into the k-NN graph step: its temporary output exists.
        let inGraph = waitFor(timeout: 60) {
            ((try? FileManager.default.contentsOfDirectory(atPath: interrupted)) ?? []).contains { $0.hasPrefix(".graph.hdf5.simjob-partial-") }
        }
        #expect(inGraph, "the graph step never started")
        #expect(process.isRunning, "the job finished before it could be interrupted")
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        #expect(process.terminationStatus == (signal == SIGINT ? 130 : 9) || process.terminationReason == .uncaughtSignal)
        #expect(!FileManager.default.fileExists(atPath: interrupted + "/graph.hdf5"), "a partial graph was left")

        let resumed = try simjob("run", folder.file("pipeline.yaml"), "--quiet")
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(stepsRun(resumed) == ["graph", "dedup"], "\(resumed.stderr)")
        #expect(resumed.stderr.contains("data (generate): up to date, skipped"))
        let leftovers = (try FileManager.default.contentsOfDirectory(atPath: interrupted)).filter { $0.contains(".simjob-partial-") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
        #expect(try contents(interrupted) == (try contents(reference)))
    }

    @Test("changing one step's option reruns that step and the steps that read its output, no others")
    func changeRerunsFromThere() throws {
        let folder = TemporaryFolder()
        let output = folder.file("out")
        let path = job("""
            output: \(output)
            steps:
              - name: data
                generate: {n: 2000, queries: 20, dim: 8, k: 5, duplicates: 0.05}
              - name: graph
                knn_graph: {input: data, k: 4, method: approx, nprobe: 2}
              - name: index
                train: {input: data, nlist: 8, m: 4}
              - name: dedup
                dedup: {input: data, threshold: 0.2}
            """, in: folder)
        #expect(stepsRun(try simjob("run", path)) == ["data", "graph", "index", "dedup"])
        #expect(stepsRun(try simjob("run", path)) == [])
        #expect(stepsRun(try simjob("run", path, "--set", "index.m=2")) == ["index"])
        #expect(stepsRun(try simjob("run", path, "--set", "index.m=2")) == [])
        #expect(stepsRun(try simjob("run", path, "--set", "index.m=2", "--set", "graph.nprobe=3")) == ["graph"])
        // A change to the data reruns everything that reads it.
        #expect(stepsRun(try simjob("run", path, "--set", "index.m=2", "--set", "graph.nprobe=3", "--set", "data.seed=9")) == ["data", "graph", "index", "dedup"])
        #expect(stepsRun(try simjob("run", path, "--set", "index.m=2", "--set", "graph.nprobe=3", "--set", "data.seed=9", "--force")) == ["data", "graph", "index", "dedup"])
        // A deleted output is made again (the same bytes, so later steps stay up to date).
        try FileManager.default.removeItem(atPath: output + "/index.hdf5")
        #expect(stepsRun(try simjob("run", path, "--set", "index.m=2", "--set", "graph.nprobe=3", "--set", "data.seed=9")) == ["index"])
    }

    @Test("schema prints every step kind with its keys and defaults")
    func schema() throws {
        let result = try simjob("schema")
        #expect(result.status == 0)
        for fragment in ["generate:", "knn_graph:", "train:", "evaluate:", "dedup:", "search:", "groundtruth:",
                         "nlist: 1024", "nprobe: [1, 4, 16, 64]", "max_points_per_centroid: 256", "output: out/example"] {
            #expect(result.stdout.contains(fragment), "'\(fragment)' missing from schema")
        }
    }

    @Test("a truncated, replaced or edited output makes its step run again, and the log says why")
    func verifiesOutputs() throws {
        let folder = TemporaryFolder()
        let output = folder.file("out")
        let file = pipeline(folder, output: output)
        #expect(try simjob("run", file, "--quiet").status == 0)
        let graph = output + "/graph.hdf5"
        // Truncated.
        let data = try #require(FileManager.default.contents(atPath: graph))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: graph))
        var rerun = try simjob("run", file)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(stepsRun(rerun) == ["graph"], "\(rerun.stderr)")
        #expect(rerun.stderr.contains("graph.hdf5 changed since it was written"), "\(rerun.stderr)")
        // Replaced by a file of the same size (one byte changed in the middle).
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: graph)))
        bytes[bytes.count / 2] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: graph))
        rerun = try simjob("run", file)
        #expect(stepsRun(rerun) == ["graph"], "\(rerun.stderr)")
        // Removed.
        try FileManager.default.removeItem(atPath: output + "/dedup-kept.hdf5")
        rerun = try simjob("run", file)
        #expect(stepsRun(rerun) == ["dedup"], "\(rerun.stderr)")
        #expect(rerun.stderr.contains("dedup-kept.hdf5 is missing"), "\(rerun.stderr)")
        // Untouched: nothing runs.
        rerun = try simjob("run", file)
        #expect(stepsRun(rerun).isEmpty, "\(rerun.stderr)")
        // The state records each output's size and checksum, written atomically (no temporary left).
        let state = try String(contentsOfFile: output + "/job-state.json", encoding: .utf8)
        #expect(state.contains("\"crc32\"") && state.contains("\"files\""), "\(state)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: output).filter { $0.contains(".simjob-partial-") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test("validate rejects two steps writing one file, a step reading its own output, and non-positive sizes")
    func validateRejectsConflicts() throws {
        let folder = TemporaryFolder()
        let output = folder.file("out")
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: output + "/self.hdf5", contents: Data("x".utf8))
        let file = job("""
            output: \(output)
            steps:
              - name: data
                generate: {n: 500, queries: 10, dim: 8, k: 0, clusters: 0}
              - name: dd
                dedup: {input: data, threshold: 0.1, write_kept: true, threads: 0}
              - name: dd-kept
                knn_graph: {input: data, k: 3}
              - name: self
                knn_graph: {input: \(output)/self.hdf5, k: 3}
              - name: neg
                knn_graph: {input: data, k: -2}
            """, in: folder)
        let result = try simjob("validate", file)
        #expect(result.status == 1)
        let expected = [
            "job.yaml:4:", "generate.clusters: must be between 1 and 16777216 (got 0)",
            "job.yaml:6:", "dedup.threads: must be between 1 and 4096 (got 0)",
            "job.yaml:7:", "writes \(output)/dd-kept.hdf5, which step 'dd' also writes",
            "job.yaml:10:", "reads \(output)/self.hdf5, its own output",
            "job.yaml:12:", "knn_graph.k: must be between 1 and 100000 (got -2)",
        ]
        for fragment in expected { #expect(result.stderr.contains(fragment), "'\(fragment)' not in:\n\(result.stderr)") }
        #expect(try simjob("run", file).status == 1)
        #expect(!FileManager.default.fileExists(atPath: output + "/data.hdf5"), "a step ran despite the problems")
    }

    @Test("one run per output folder: a second run is refused naming the first; the lock goes with its holder")
    func oneRunPerFolder() throws {
        let folder = TemporaryFolder()
        let output = folder.file("out")
        let file = job("""
            output: \(output)
            steps:
              - name: data
                generate: {n: 30000, queries: 10, dim: 64, k: 0, seed: 3}
              - name: graph
                knn_graph: {input: data, k: 5, block: 256, threads: 1}
            """, in: folder)
        let first = try BackgroundSimjob(["run", file, "--quiet"])
        waitForState(output, containing: "data")
        #expect(first.process.isRunning, "the first run ended before the second started")
        let second = try simjob("run", file, "--quiet")
        #expect(second.status == 1)
        #expect(second.stderr.contains("another simjob run is using this output folder") && second.stderr.contains("pid \(first.process.processIdentifier)"),
                "\(second.stderr)")
        kill(first.process.processIdentifier, SIGKILL)
        _ = first.finish()
        // The same folder with only the finished first step: the lock is free again.
        let dataOnly = job("""
            output: \(output)
            steps:
              - name: data
                generate: {n: 30000, queries: 10, dim: 64, k: 0, seed: 3}
            """, in: folder, name: "data-only.yaml")
        let third = try simjob("run", dataOnly)
        #expect(third.status == 0, "after the holder was killed: \(third.stderr)")
        #expect(third.stderr.contains("up to date, skipped"), "\(third.stderr)")
    }

    @Test("validate reports every bad key of a step, a mistyped --input name, an output folder that is a file, and YAML errors with their lines")
    func validateReportsEverything() throws {
        let folder = TemporaryFolder()
        FileManager.default.createFile(atPath: folder.file("afile"), contents: Data("x".utf8))
        let file = job("""
            output: \(folder.file("afile"))
            description: [not, text]
            inputs:
              data: \(folder.file("nothing.hdf5"))
            steps:
              - generate: {n: 10, dim: 0.5, k: huge, queries: zz, clusters: [1, 2]}
            """, in: folder)
        let result = try simjob("validate", file)
        #expect(result.status == 1)
        for fragment in ["job.yaml:1:", "is a file; the job's outputs need a folder", "job.yaml:2:", "description: must be text",
                         "generate.dim: must be a whole number", "generate.k: expected a whole number",
                         "generate.queries: expected a whole number", "generate.clusters: expected a single value (not a list or a mapping)"] {
            #expect(result.stderr.contains(fragment), "'\(fragment)' not in:\n\(result.stderr)")
        }
        let override = try simjob("validate", file, "--input", "dtaa=/tmp/x.hdf5")
        #expect(override.status == 1 && override.stderr.contains("the job has no input named 'dtaa' (it has data)"), "\(override.stderr)")
        let yaml = job("output: a\noutput: b\nsteps: []\n", in: folder, name: "dup.yaml")
        let duplicate = try simjob("validate", yaml)
        #expect(duplicate.status == 1 && duplicate.stderr.contains("dup.yaml:1:") && duplicate.stderr.contains("repeated key 'output'"), "\(duplicate.stderr)")
        #expect(duplicate.stderr.split(separator: "\n").count == 1, "\(duplicate.stderr)")
    }

    @Test("validate: a step reading itself, an empty name, a step named like an input, bad enum values, malformed --set")
    func validateReferencesAndValues() throws {
        let folder = TemporaryFolder()
        let data = folder.file("in.hdf5")
        #expect(try simjob("generate", data, "--n", "200", "--queries", "5", "--dim", "8", "--quiet").status == 0)
        let file = job("""
            output: \(folder.file("out"))
            inputs:
              emb: \(data)
            steps:
              - name: a
                knn_graph: {input: a, k: 3}
              - name: ""
                knn_graph: {input: emb, k: 3}
              - name: emb
                knn_graph: {input: emb, k: 3, metric: cosine}
              - name: d
                dedup: {input: emb, threshold: 0.1, keep: last}
            """, in: folder)
        let result = try simjob("validate", file)
        for fragment in ["'a' is this step's own output", "at least one (it names the output file)",
                         "'emb' is also a named input", "dedup.keep: must be one of first, centroid (got last)"] {
            #expect(result.stderr.contains(fragment), "'\(fragment)' not in:\n\(result.stderr)")
        }
        #expect(!result.stderr.contains("metric"), "metric: cosine is a name of angular, as on the command line: \(result.stderr)")
        for bad in [["--set", "a.k"], ["--set", "k=3"], ["--input", "emb"]] {
            let parsed = try simjob(["validate", file] + bad)
            #expect(parsed.status == 64 && parsed.stderr.split(separator: "\n").count == 1, "\(bad): \(parsed.stderr)")
        }
    }

    @Test("the state file: unreadable is a warning and a full rerun, a folder in its place is refused before work, another spelling of the folder finds it")
    func stateFile() throws {
        let folder = TemporaryFolder()
        let output = folder.file("out")
        let file = job("""
            output: \(output)
            steps:
              - name: data
                generate: {n: 300, queries: 5, dim: 8, k: 3}
              - name: graph
                knn_graph: {input: data, k: 3}
            """, in: folder)
        #expect(try simjob("run", file).status == 0)
        symlink(output, folder.file("alias"))
        let alias = try simjob("run", file, "--output", folder.file("alias"))
        #expect(alias.status == 0 && stepsRun(alias).isEmpty, "another spelling of the folder reran: \(alias.stderr)")
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: output + "/job-state.json"))
        let damaged = try simjob("run", file)
        #expect(damaged.status == 0 && damaged.stderr.contains("is not a state file simjob wrote") && stepsRun(damaged) == ["data", "graph"], "\(damaged.stderr)")
        try FileManager.default.removeItem(atPath: output + "/job-state.json")
        try FileManager.default.createDirectory(atPath: output + "/job-state.json", withIntermediateDirectories: true)
        let refused = try simjob("run", file)
        #expect(refused.status == 1 && refused.stderr.contains("job-state.json: is not a regular file") && stepsRun(refused).isEmpty, "\(refused.stderr)")
    }
}
