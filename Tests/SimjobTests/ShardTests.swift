import Foundation
import Testing

/// Jobs cut into shards (`run --shard`, `simjob slurm`): the merged outputs equal one run's,
/// and missing, damaged, foreign, killed and repeated shards are handled.
@Suite("Sharded jobs")
struct ShardTests {
    func job(_ text: String, in folder: TemporaryFolder, name: String = "job.yaml") -> String {
        folder.write(text, name: name)
    }

    /// A job with every shardable kind: ground truth, exact graph, the approximate graph ranked
    /// in a reduced space and in the full one, exact and fast dedup, IVF-PQ (and a step after).
    func shardedJob(_ folder: TemporaryFolder, metric: String = "euclidean", keep: String = "first", name: String = "job.yaml") -> String {
        let dedupMetric = metric == "ip" ? "euclidean" : metric
        let thresholds = dedupMetric == "angular" ? "[0.002, 0.01]" : "[0.05, 0.2]"
        return job("""
            output: out
            steps:
              - name: data
                generate: {n: 2500, queries: 70, dim: 24, clusters: 12, metric: \(metric), duplicates: 0.05, k: 0, seed: 11}
              - name: truth
                groundtruth: {input: data, k: 7, block: 128}
              - name: graph
                knn_graph: {input: data, k: 6, block: 128}
              - name: dups
                dedup: {input: data, metric: \(dedupMetric), threshold: \(thresholds), keep: \(keep), write_pairs: true, write_kept: true}
              - name: approx
                knn_graph: {input: data, k: 6, method: approx, nprobe: 2, rounds: 2, dimension: 12, partitions: 9}
              - name: approxfull
                knn_graph: {input: data, k: 6, method: approx, nprobe: 3, rounds: 1, partitions: 7}
              - name: fastdups
                dedup: {input: data, metric: \(dedupMetric), threshold: \(thresholds), mode: fast, partitions: 6, keep: \(keep), write_pairs: true}
              - name: check
                evaluate: {graph: graph, truth: graph}
              - name: index
                train: {input: data, nlist: 8, m: 4, nbits: 5, metric: \(metric)}
            """, in: folder, name: name)
    }

    static let outputs = ["truth.hdf5", "graph.hdf5", "dups.hdf5", "dups-kept.hdf5", "approx.hdf5", "approxfull.hdf5", "fastdups.hdf5", "check.hdf5", "index.hdf5"]

    /// Every dataset's bytes and every attribute (evaluation timings aside) of the outputs.
    func contents(_ folder: String, files: [String] = ShardTests.outputs) throws -> String {
        try python("""
            import os, sys, h5py, hashlib
            digest = hashlib.sha256()
            for name in sys.argv[2:]:
                f = h5py.File(sys.argv[1] + "/" + name, "r")
                def visit(path, obj):
                    digest.update(path.encode())
                    if isinstance(obj, h5py.Dataset): digest.update(obj.dtype.str.encode()); digest.update(obj[()].tobytes())
                    for key in sorted(obj.attrs):
                        if "second" in key or "time" in key or "qps" in key or key == "built_at": continue
                        # Paths name the output folder (source: one/data.hdf5:train), the one difference allowed.
                        value = repr(obj.attrs[key]).replace(os.path.basename(sys.argv[1]) + "/", "OUTPUT/")
                        digest.update(key.encode()); digest.update(value.encode())
                f.visititems(visit)
                visit("/", f)
            print(digest.hexdigest())
            """, [folder] + files)
    }

    func python(_ script: String, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let result = try runProgram("/usr/bin/env", ["python3", "-c", script] + arguments)
        #expect(result.status == 0, "python failed: \(result.stderr)", sourceLocation: sourceLocation)
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func run(_ arguments: [String], in folder: TemporaryFolder, environment extra: [String: String] = [:]) throws -> CommandResult {
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in extra { environment[key] = value }
        environment["SIMJOB_TEST_SHARD_DELAY"] = extra["SIMJOB_TEST_SHARD_DELAY"]
        return try runProgram(simjobPath, arguments, environment: environment, currentDirectory: folder.path)
    }

    /// Runs every sharded step's shards (in the order given) after its preparation, then merges.
    func runSharded(_ jobFile: String, shards: Int, order: [Int], in folder: TemporaryFolder,
                    steps: [String] = ["truth", "graph", "dups", "approx", "approxfull", "fastdups", "index"]) throws -> CommandResult {
        for step in steps {
            let prepared = try run(["run", jobFile, "--prepare", step, "--quiet"], in: folder)
            #expect(prepared.status == 0, "\(prepared.stderr)")
            for index in order {
                let shard = try run(["run", jobFile, "--step", step, "--shard", "\(index)/\(shards)", "--quiet"], in: folder)
                #expect(shard.status == 0, "\(shard.stderr)")
            }
        }
        return try run(["run", jobFile, "--quiet"], in: folder)
    }

    @Test("shards of ground truth, the exact graph, the approximate graph's search (reduced and full space), exact and fast dedup and IVF-PQ encoding merge into exactly one run's outputs",
          arguments: [("euclidean", 3, "first"), ("angular", 5, "centroid"), ("ip", 2, "first")])
    func mergedEqualsOneRun(metric: String, shards: Int, keep: String) throws {
        let folder = TemporaryFolder()
        let jobFile = shardedJob(folder, metric: metric, keep: keep)
        let one = try run(["run", jobFile, "--output", "one", "--quiet"], in: folder)
        #expect(one.status == 0, "\(one.stderr)")
        // Shards out of order: the merge does not depend on the order they finished in.
        let merged = try runSharded(jobFile, shards: shards, order: Array((0..<shards).reversed()), in: folder)
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(merged.stdout.contains("merged from \(shards) shards"), "\(merged.stdout)")
        #expect(try contents(folder.file("out")) == (try contents(folder.file("one"))))
        #expect(!FileManager.default.fileExists(atPath: folder.file("out/shards")), "the shards were not removed after the merge")
        // A second run finds every step up to date.
        let again = try run(["run", jobFile, "--quiet"], in: folder)
        #expect(again.status == 0 && !again.stdout.contains(" ran "), "\(again.stdout)")
    }

    @Test("the approximate graph and fast dedup above their memory limit: preparation, shards and merge spill their vectors and still give one run's outputs")
    func spilledShards() throws {
        let folder = TemporaryFolder()
        // 2,500 x 24 floats (240 KB): each limit is above the step's state, below state and vectors.
        let jobFile = job("""
            output: out
            steps:
              - name: data
                generate: {n: 2500, queries: 10, dim: 24, clusters: 12, duplicates: 0.05, k: 0, seed: 11}
              - name: approx
                knn_graph: {input: data, k: 6, method: approx, nprobe: 3, rounds: 1, partitions: 7, memory_limit: 800K}
              - name: fastdups
                dedup: {input: data, threshold: 0.2, mode: fast, partitions: 6, memory_limit: 1200K}
            """, in: folder)
        let one = try run(["run", jobFile, "--output", "one", "--quiet"], in: folder)
        #expect(one.status == 0, "\(one.stderr)")
        let files = ["approx.hdf5", "fastdups.hdf5"]
        let spilled = try python("""
            import sys, h5py
            print(sum(1 for name, group in [("approx.hdf5", "knn_graph"), ("fastdups.hdf5", "dedup")]
                      if h5py.File(sys.argv[1] + "/" + name, "r")[group].attrs.get("spilled_bytes", 0) > 0))
            """, [folder.file("one")])
        #expect(spilled == "2", "both one-machine runs should spill at these limits")
        let merged = try runSharded(jobFile, shards: 3, order: [2, 0, 1], in: folder, steps: ["approx", "fastdups"])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(try contents(folder.file("out"), files: files) == (try contents(folder.file("one"), files: files)))
        // No spill file is left beside the shards or the outputs.
        let left = (FileManager.default.enumerator(atPath: folder.file("out"))?.allObjects as? [String] ?? []).filter { $0.contains("spill") }
        #expect(left.isEmpty, "\(left)")
    }

    @Test("more shards than rows: empty shards merge too")
    func moreShardsThanRows() throws {
        let folder = TemporaryFolder()
        let jobFile = job("""
            output: out
            steps:
              - name: data
                generate: {n: 40, queries: 3, dim: 8, duplicates: 0.1, k: 0, seed: 5}
              - name: truth
                groundtruth: {input: data, k: 4}
            """, in: folder)
        #expect(try run(["run", jobFile, "--output", "one", "--quiet"], in: folder).status == 0)
        #expect(try run(["run", jobFile, "--prepare", "truth", "--quiet"], in: folder).status == 0)
        for index in 0..<7 { #expect(try run(["run", jobFile, "--shard", "\(index)/7", "--quiet"], in: folder).status == 0) }
        let merged = try run(["run", jobFile, "--quiet"], in: folder)
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(try contents(folder.file("out"), files: ["truth.hdf5"]) == (try contents(folder.file("one"), files: ["truth.hdf5"])))
    }

    @Test("the merge refuses missing, damaged, foreign and mixed shards with one line naming them, and writes nothing")
    func mergeRefusesBadShards() throws {
        let folder = TemporaryFolder()
        let jobFile = shardedJob(folder)
        #expect(try run(["run", jobFile, "--prepare", "truth", "--quiet"], in: folder).status == 0)
        for index in [0, 2] { #expect(try run(["run", jobFile, "--shard", "\(index)/3", "--quiet"], in: folder).status == 0) }
        let shardFolder = folder.file("out/shards/truth")

        // Missing.
        var merge = try run(["run", jobFile, "--quiet"], in: folder)
        #expect(merge.status != 0)
        #expect(merge.stderr.contains("shard 1/3 missing"), "\(merge.stderr)")
        #expect(merge.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }.count == 1, "\(merge.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.file("out/truth.hdf5")))

        // Damaged: a byte of shard 2's data file changed.
        #expect(try run(["run", jobFile, "--shard", "1/3", "--quiet"], in: folder).status == 0)
        let data = shardFolder + "/shard-0002-of-0003.hdf5"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: data))
        bytes[bytes.count - 5] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: data))
        merge = try run(["run", jobFile, "--quiet"], in: folder)
        #expect(merge.status != 0)
        #expect(merge.stderr.contains("shard 2/3 damaged"), "\(merge.stderr)")

        // A manifest that is not one simjob wrote.
        try "{\"format\": 1}".write(toFile: shardFolder + "/shard-0000-of-0003.json", atomically: true, encoding: .utf8)
        merge = try run(["run", jobFile, "--quiet"], in: folder)
        #expect(merge.stderr.contains("0/3 damaged (its manifest is not one simjob wrote)"), "\(merge.stderr)")

        // Rerunning the bad shards repairs them; a finished good one is left alone.
        let good = fileDigest(shardFolder + "/shard-0001-of-0003.hdf5")
        for index in 0..<3 { #expect(try run(["run", jobFile, "--shard", "\(index)/3", "--quiet"], in: folder).status == 0) }
        #expect(fileDigest(shardFolder + "/shard-0001-of-0003.hdf5") == good)

        // Foreign: the step's settings changed since the shards ran.
        merge = try run(["run", jobFile, "--set", "truth.k=5", "--quiet"], in: folder)
        #expect(merge.status != 0)
        #expect(merge.stderr.contains("foreign (made with other settings or inputs)"), "\(merge.stderr)")

        // Mixed counts: a shard of another cut is refused where it would be written.
        let mixed = try run(["run", jobFile, "--shard", "0/2", "--quiet"], in: folder)
        #expect(mixed.status != 0)
        #expect(mixed.stderr.contains("holds shards of a cut into 3 shards, not 2"), "\(mixed.stderr)")

        merge = try run(["run", jobFile, "--quiet"], in: folder)
        #expect(merge.status == 0, "\(merge.stderr)")
        #expect(merge.stdout.contains("merged from 3 shards"))
    }

    @Test("shards with shared work (IVF-PQ's quantizers, the approximate graph's cells, fast dedup's partitions) need their preparation; a damaged one is refused at the merge",
          arguments: ["index", "approx", "fastdups"])
    func sharedPreparation(step: String) throws {
        let folder = TemporaryFolder()
        let jobFile = shardedJob(folder)
        // The steps before it on one machine, then its shards without the preparation.
        #expect(try run(["run", jobFile, "--prepare", "truth", "--quiet"], in: folder).status == 0)
        let before = try run(["run", jobFile, "--shard", "0/2", "--step", step, "--quiet"], in: folder)
        #expect(before.status != 0 && before.stderr.contains("step 'truth' (groundtruth) has not run"), "\(before.stderr)")
        let steps = try run(["run", jobFile, "--prepare", step, "--quiet"], in: folder)
        #expect(steps.status == 0, "\(steps.stderr)")
        let store = folder.file("out/shards/\(step)")
        #expect(FileManager.default.fileExists(atPath: store + "/prepared.hdf5"))
        try FileManager.default.removeItem(atPath: store + "/prepared.json")
        let unprepared = try run(["run", jobFile, "--shard", "0/2", "--step", step, "--quiet"], in: folder)
        #expect(unprepared.status != 0 && unprepared.stderr.contains("share a preparation") && unprepared.stderr.contains("--prepare \(step)"), "\(unprepared.stderr)")
        #expect(try run(["run", jobFile, "--prepare", step, "--quiet"], in: folder).status == 0)
        for index in 0..<2 { #expect(try run(["run", jobFile, "--step", step, "--shard", "\(index)/2", "--quiet"], in: folder).status == 0) }
        // The shared work the shards used, altered: the merge refuses.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: store + "/prepared.hdf5"))
        bytes[bytes.count - 3] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: store + "/prepared.hdf5"))
        let merge = try run(["run", jobFile, "--quiet"], in: folder)
        #expect(merge.status != 0 && merge.stderr.contains("preparation") && merge.stderr.contains("changed since it was written"), "\(merge.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.file("out/\(step).hdf5")))
    }

    @Test("a finished shard is not run again; a killed shard leaves nothing behind and reruns; one shard runs once at a time")
    func killedAndRepeatedShards() throws {
        let folder = TemporaryFolder()
        let jobFile = shardedJob(folder)
        #expect(try run(["run", jobFile, "--output", "one", "--quiet"], in: folder).status == 0)
        #expect(try run(["run", jobFile, "--prepare", "truth", "--quiet"], in: folder).status == 0)
        #expect(try run(["run", jobFile, "--shard", "0/2", "--quiet"], in: folder).status == 0)
        let shardFolder = folder.file("out/shards/truth")
        let first = try FileManager.default.attributesOfItem(atPath: shardFolder + "/shard-0000-of-0002.hdf5")[.modificationDate] as? Date
        let repeated = try run(["run", jobFile, "--shard", "0/2"], in: folder)
        #expect(repeated.status == 0)
        #expect(repeated.stdout.contains("up to date"), "\(repeated.stdout)")
        #expect(try FileManager.default.attributesOfItem(atPath: shardFolder + "/shard-0000-of-0002.hdf5")[.modificationDate] as? Date == first)

        // Shard 1, held in its work, then killed.
        var environment = ProcessInfo.processInfo.environment
        environment["SIMJOB_TEST_SHARD_DELAY"] = "60"
        let slow = try BackgroundSimjob(["run", folder.file("job.yaml"), "--output", folder.file("out"), "--shard", "1/2"], environment: environment)
        #expect(waitFor(timeout: 60) { FileManager.default.fileExists(atPath: shardFolder + "/shard-0001-of-0002.lock") })
        #expect(waitFor(timeout: 60) { (try? String(contentsOfFile: slow.folder.file("stderr"), encoding: .utf8))?.contains("shard 1/2: running") == true })
        let twice = try run(["run", jobFile, "--shard", "1/2", "--quiet"], in: folder)
        #expect(twice.status != 0)
        #expect(twice.stderr.contains("shard 1/2 of step 'truth' is running in another process"), "\(twice.stderr)")
        kill(slow.process.processIdentifier, SIGKILL)
        _ = slow.finish()
        let left = (try FileManager.default.contentsOfDirectory(atPath: shardFolder)).filter { $0.contains("0001") && !$0.hasSuffix(".lock") }
        #expect(left.isEmpty, "the killed shard left \(left)")
        let merge = try run(["run", jobFile, "--quiet"], in: folder)
        #expect(merge.status != 0 && merge.stderr.contains("shard 1/2 missing"), "\(merge.stderr)")

        #expect(try run(["run", jobFile, "--shard", "1/2", "--quiet"], in: folder).status == 0)
        let partials = (try FileManager.default.contentsOfDirectory(atPath: shardFolder)).filter { $0.contains(".simjob-partial-") }
        #expect(partials.isEmpty, "temporary files left: \(partials)")
        // The rest of the job on one machine: the merged truth, then the other steps here.
        let rest = try run(["run", jobFile, "--quiet"], in: folder)
        #expect(rest.status == 0, "\(rest.stderr)")
        #expect(try contents(folder.file("out")) == (try contents(folder.file("one"))))
    }

    @Test("shard options and prerequisites are checked with one-line errors")
    func shardOptionErrors() throws {
        let folder = TemporaryFolder()
        let jobFile = shardedJob(folder)
        func failing(_ arguments: [String], _ message: String, environment: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try run(arguments, in: folder, environment: environment)
            #expect(result.status != 0, sourceLocation: sourceLocation)
            #expect(result.stderr.contains(message), "\(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }.count == 1, "\(result.stderr)", sourceLocation: sourceLocation)
        }
        try failing(["run", jobFile, "--shard", "3/3"], "shards are counted from 0 to 2")
        try failing(["run", jobFile, "--shard", "a/3"], "--shard takes I/N")
        try failing(["run", jobFile, "--shard", "0/0"], "the shard count must be between 1 and")
        try failing(["run", jobFile, "--shard", "/3"], "no shard index given")
        try failing(["run", jobFile, "--shard", "/3"], "SLURM_ARRAY_TASK_ID=x is not a shard index", environment: ["SLURM_ARRAY_TASK_ID": "x"])
        try failing(["run", jobFile, "--shard", "0/3"], "run `simjob run \(jobFile) --prepare truth` first")
        try failing(["run", jobFile, "--shard", "0/3", "--step", "data"], "step 'data' (generate) does not run in shards")
        try failing(["run", jobFile, "--shard", "0/3", "--step", "nosuch"], "no step named 'nosuch'")
        try failing(["run", jobFile, "--prepare", "nosuch"], "no step named 'nosuch'")
        try failing(["run", jobFile, "--step", "graph"], "--step goes with --shard")
        let targetJob = job("""
            output: out
            steps:
              - name: data
                generate: {n: 500, queries: 5, dim: 8, k: 0, seed: 5}
              - name: approx
                knn_graph: {input: data, k: 5, method: approx, recall: 0.9}
            """, in: folder, name: "target.yaml")
        try failing(["run", targetJob, "--shard", "0/3", "--step", "approx"], "step 'approx' (knn_graph) does not run in shards")

        // The index from the scheduler's environment (Kubernetes indexed jobs here).
        #expect(try run(["run", jobFile, "--prepare", "truth", "--quiet"], in: folder).status == 0)
        let fromEnvironment = try run(["run", jobFile, "--shard", "/3"], in: folder, environment: ["JOB_COMPLETION_INDEX": "2"])
        #expect(fromEnvironment.status == 0, "\(fromEnvironment.stderr)")
        #expect(fromEnvironment.stdout.contains("shard 2/3 ran"), "\(fromEnvironment.stdout)")
        #expect(FileManager.default.fileExists(atPath: folder.file("out/shards/truth/shard-0002-of-0003.json")))
    }

    @Test("simjob slurm --dry-run prints the scripts and submits nothing; its errors are one line")
    func slurmDryRun() throws {
        let folder = TemporaryFolder()
        let jobFile = shardedJob(folder)
        let dry = try run(["slurm", jobFile, "--shards", "4", "--partition", "batch", "--time", "1:00:00", "--mem", "8G",
                           "--cpus-per-task", "2", "--sbatch-arg=--account=ml", "--dry-run"], in: folder)
        #expect(dry.status == 0, "\(dry.stderr)")
        for expected in ["prepare-truth.sh", "shards-graph.sh", "merge.sh", "#SBATCH --partition=batch", "#SBATCH --time=1:00:00",
                         "#SBATCH --mem=8G", "#SBATCH --cpus-per-task=2", "#SBATCH --account=ml", "#SBATCH --requeue",
                         "--step dups --shard \"${SLURM_ARRAY_TASK_ID}/4\"", "--array=0-3", "--kill-on-invalid-dep=yes"] {
            #expect(dry.stdout.contains(expected), "missing \(expected) in \(dry.stdout)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.file("out/slurm")), "--dry-run wrote files")

        let status = try run(["slurm", jobFile, "--shards", "4", "--status"], in: folder)
        #expect(status.status != 0 && status.stderr.contains("no submission recorded"), "\(status.stderr)")
        let plain = job("output: plain\nsteps:\n  - name: data\n    generate: {n: 100, queries: 5, dim: 4, k: 0}\n", in: folder, name: "plain.yaml")
        let none = try run(["slurm", plain, "--shards", "2", "--dry-run"], in: folder)
        #expect(none.status != 0 && none.stderr.contains("no step runs in shards"), "\(none.stderr)")
        let zero = try run(["slurm", jobFile, "--shards", "0"], in: folder)
        #expect(zero.status != 0 && zero.stderr.contains("--shards must be between 1 and"), "\(zero.stderr)")
    }
}

/// `simjob slurm` against a real single-node Slurm cluster, started by the test from Debian's
/// packages (installed when missing) and stopped by pid afterwards.
@Suite("Slurm cluster")
struct SlurmClusterTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/slurm-test-cluster.sh").path

    @Test("a job (exact graph, approximate graph and dedup in 4 shards each) through simjob slurm equals the one-machine run; a cancelled shard shows in --status, cancels what waits for it, and --resume completes it with the same result")
    func slurmRun() throws {
        let folder = TemporaryFolder()
        let cluster = folder.file("cluster")
        let start = try runProgram("/bin/bash", [SlurmClusterTests.script, "start", cluster],
                                   environment: ProcessInfo.processInfo.environment.merging(["SIMJOB_SLURM_PORT": "16917"]) { $1 })
        defer { _ = try? runProgram("/bin/bash", [SlurmClusterTests.script, "stop", cluster]) }
        try #require(start.status == 0, "could not start a Slurm cluster: \(start.stderr)")
        var environment = ProcessInfo.processInfo.environment
        environment["SLURM_CONF"] = cluster + "/slurm.conf"
        environment["SIMJOB_TEST_SHARD_DELAY"] = nil
        func simjobHere(_ arguments: [String], extra: [String: String] = [:]) throws -> CommandResult {
            try runProgram(simjobPath, arguments, environment: environment.merging(extra) { $1 }, currentDirectory: folder.path)
        }
        func slurm(_ arguments: [String]) throws -> CommandResult {
            try runProgram("/usr/bin/env", arguments, environment: environment, currentDirectory: folder.path)
        }
        let jobFile = folder.file("job.yaml")
        try """
            output: out
            steps:
              - name: data
                generate: {n: 3000, queries: 40, dim: 16, clusters: 10, duplicates: 0.05, k: 0, seed: 2}
              - name: graph
                knn_graph: {input: data, k: 5}
              - name: approx
                knn_graph: {input: data, k: 5, method: approx, nprobe: 3, rounds: 1}
              - name: dups
                dedup: {input: data, threshold: [0.05, 0.2], write_pairs: true}
            """.write(toFile: jobFile, atomically: true, encoding: .utf8)
        let one = try simjobHere(["run", "job.yaml", "--output", "one", "--quiet"])
        #expect(one.status == 0, "\(one.stderr)")

        /// Waits until none of the submission's jobs is queued or running.
        func waitForQuiet(_ ids: [String], timeout: Double = 300) -> Bool {
            waitFor(timeout: timeout) {
                guard let queue = try? slurm(["squeue", "-h", "-r", "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING,REQUEUED", "-o", "%i"]) else { return false }
                return queue.status == 0 && !queue.stdout.split(separator: "\n").contains { line in ids.contains { line.hasPrefix($0) } }
            }
        }
        func ids(_ result: CommandResult) -> [String] {
            guard let line = result.stdout.split(separator: "\n").first(where: { $0.contains("submitted Slurm jobs") }) else { return [] }
            return line.split(separator: " ").filter { $0.allSatisfy(\.isNumber) }.map(String.init)
        }
        func outputs(_ name: String) throws -> String {
            try python("""
                import sys, h5py, hashlib
                digest = hashlib.sha256()
                for name in ["graph.hdf5", "approx.hdf5", "dups.hdf5"]:
                    f = h5py.File(sys.argv[1] + "/" + name, "r")
                    def visit(path, obj):
                        if isinstance(obj, h5py.Dataset): digest.update(path.encode()); digest.update(obj[()].tobytes())
                    f.visititems(visit)
                print(digest.hexdigest())
                """, folder.file(name))
        }

        // 1. The whole job through Slurm.
        let submitted = try simjobHere(["slurm", "job.yaml", "--shards", "4", "--cpus-per-task", "1"])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let first = ids(submitted)
        #expect(first.count == 7, "\(submitted.stdout)")  // prepare + shards, three times, and the merge
        #expect(waitForQuiet(first), "the Slurm jobs did not finish")
        let done = try simjobHere(["slurm", "job.yaml", "--shards", "4", "--status"])
        #expect(done.stdout.contains("step graph (knn_graph): merged") && done.stdout.contains("step approx (knn_graph): merged") && done.stdout.contains("merge (job \(first.last!)): COMPLETED"), "\(done.stdout)\(done.stderr)")
        #expect(try outputs("out") == (try outputs("one")))

        // 2. Again from scratch (--force), one shard cancelled while it runs.
        let second = try simjobHere(["slurm", "job.yaml", "--shards", "4", "--cpus-per-task", "1", "--force"], extra: ["SIMJOB_TEST_SHARD_DELAY": "6"])
        #expect(second.status == 0, "\(second.stderr)")
        let secondIDs = ids(second)
        try #require(secondIDs.count == 7, "\(second.stdout)")
        let graphArray = secondIDs[1]
        let running = waitFor(timeout: 120) {
            (try? slurm(["squeue", "-h", "-r", "-j", graphArray, "-t", "RUNNING", "-o", "%i"]))?.stdout.contains("\(graphArray)_1") == true
        }
        #expect(running, "shard 1 of the graph never ran")
        #expect(try slurm(["scancel", "\(graphArray)_1"]).status == 0)
        #expect(waitForQuiet(secondIDs), "jobs stayed queued after a shard was cancelled (a dependency left pending)")
        let status = try simjobHere(["slurm", "job.yaml", "--shards", "4", "--status"])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("1 failed (\(graphArray)_1, CANCELLED"), "\(status.stdout)")
        #expect(status.stdout.contains("merge (job \(secondIDs.last!)): CANCELLED"), "\(status.stdout)")
        #expect(status.stdout.contains("--resume"), "\(status.stdout)")
        #expect(!FileManager.default.fileExists(atPath: folder.file("out/shards/graph/shard-0001-of-0004.json")))
        // A new submission while nothing runs is allowed; while jobs wait it is refused (checked
        // below by --resume's own refusal of a changed shard count).
        let wrongCount = try simjobHere(["slurm", "job.yaml", "--shards", "3", "--resume"])
        #expect(wrongCount.status != 0 && wrongCount.stderr.contains("submitted with 4 shards"), "\(wrongCount.stderr)")

        let resumed = try simjobHere(["slurm", "job.yaml", "--shards", "4", "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("step graph: resubmitted shards 1 as Slurm job"), "\(resumed.stderr)")
        #expect(waitForQuiet(ids(resumed)), "the resubmitted jobs did not finish")
        let final = try simjobHere(["slurm", "job.yaml", "--shards", "4", "--status"])
        #expect(final.stdout.contains("step dups (dedup): merged"), "\(final.stdout)\(final.stderr)")
        #expect(try outputs("out") == (try outputs("one")))
        let logs = (try? FileManager.default.contentsOfDirectory(atPath: folder.file("out/slurm/logs"))) ?? []
        #expect(logs.contains { $0.hasPrefix("shards-graph-") }, "no shard logs in out/slurm/logs: \(logs)")
    }
}
