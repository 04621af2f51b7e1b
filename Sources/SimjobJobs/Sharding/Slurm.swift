import Foundation
import SimjobAlgorithms
import SimjobHDF5

/// Runs a job's sharded steps on a Slurm cluster: batch scripts, submission through `sbatch`,
/// status and resubmission of what failed.
///
/// For each step that runs in shards, in job order, three kinds of batch job:
///
///     prepare-STEP   simjob run JOB --prepare STEP     every step before STEP (merging the
///                                                      previous sharded step), after the
///                                                      previous step's shards
///     shards-STEP    simjob run JOB --step STEP --shard $SLURM_ARRAY_TASK_ID/N
///                                                      an array of N tasks, after prepare-STEP
///     merge          simjob run JOB                    merges the last sharded step and runs
///                                                      the rest, after its shards
///
/// Each dependent job is submitted with `--dependency=afterok:...` and `--kill-on-invalid-dep=yes`,
/// so a failed or cancelled shard cancels what waits on it instead of leaving it pending
/// forever (Slurm's default unless the cluster sets `kill_invalid_depend`). Shard tasks are
/// `--requeue`-able: a requeued or preempted shard starts again from nothing, and a shard
/// already done is not run again. The scripts, the submitted ids (`submission.json`) and the
/// logs stay in `OUTPUT/slurm/`.
public struct SlurmRunner {
    public struct Options: Sendable {
        public var shards: Int
        public var partition: String?
        public var time: String?
        public var memory: String?
        public var cpusPerTask: Int?
        public var sbatchArguments: [String] = []
        /// The arguments that reproduce the job on the command line (the job file, --set,
        /// --input, --output), passed to every `simjob run` of the scripts.
        public var jobArguments: [String]
        public var executable: String
        public var workingDirectory: String

        public init(shards: Int, jobArguments: [String], executable: String, workingDirectory: String) {
            self.shards = shards
            self.jobArguments = jobArguments
            self.executable = executable
            self.workingDirectory = workingDirectory
        }
    }

    /// One submitted batch job.
    public struct SubmittedJob: Codable, Sendable {
        public var role: String          // prepare, shards, merge
        public var step: String?
        public var id: String
        /// For shard arrays: the task indices submitted.
        public var tasks: [Int]?
        public var script: String
        public var dependsOn: [String]
    }

    /// What `simjob slurm` submitted, kept in `OUTPUT/slurm/submission.json`.
    public struct Submission: Codable, Sendable {
        public var format = "simjob-slurm"
        public var job: String
        public var shards: Int
        public var submitted: Date
        public var jobs: [SubmittedJob]
    }

    public let plan: JobPlan
    public let options: Options
    public var log: (String) -> Void = { _ in }

    public init(plan: JobPlan, options: Options) {
        self.plan = plan
        self.options = options
    }

    var folder: String { plan.outputFolder + "/slurm" }
    var submissionPath: String { folder + "/submission.json" }
    var runner: JobRunner { JobRunner(plan: plan) }

    // MARK: scripts

    /// A batch script: its `#SBATCH` lines, then one `simjob run`.
    func script(role: String, step: String?, arguments: [String], array: Bool) -> String {
        let name = "simjob-\(plan.name)-" + (step.map { "\(role)-\($0)" } ?? role)
        let logName = (step.map { "\(role)-\($0)" } ?? role) + (array ? "-%A_%a.out" : "-%j.out")
        var lines = ["#!/bin/bash", "#SBATCH --job-name=\(name)", "#SBATCH --output=\(absolute(folder))/logs/\(logName)"]
        if let partition = options.partition { lines.append("#SBATCH --partition=\(partition)") }
        if let time = options.time { lines.append("#SBATCH --time=\(time)") }
        if let memory = options.memory { lines.append("#SBATCH --mem=\(memory)") }
        if let cpus = options.cpusPerTask { lines.append("#SBATCH --cpus-per-task=\(cpus)") }
        if array { lines += ["#SBATCH --requeue", "#SBATCH --open-mode=append"] }
        for argument in options.sbatchArguments { lines.append("#SBATCH \(argument)") }
        lines += [
            "# Written by simjob slurm for \(plan.file); rerunning it is safe (finished work is skipped).",
            "set -euo pipefail",
            "cd \(quoted(options.workingDirectory))",
        ]
        let command = ([options.executable, "run"] + options.jobArguments + arguments).map { $0.hasPrefix("$") || $0.hasPrefix("\"$") ? $0 : quoted($0) }
        lines.append("exec " + command.joined(separator: " "))
        return lines.joined(separator: "\n") + "\n"
    }

    /// The scripts of a complete submission, in submission order: (role, step, file name, text).
    public func scripts() throws -> [(role: String, step: String?, name: String, text: String)] {
        let steps = runner.shardedSteps
        guard !steps.isEmpty else {
            throw SimjobError("\(plan.file): no step runs in shards (\(JobRunner.shardableKinds) do); run it with simjob run")
        }
        var scripts: [(String, String?, String, String)] = []
        for step in steps {
            scripts.append(("prepare", step.name, "prepare-\(step.name).sh", script(role: "prepare", step: step.name, arguments: ["--prepare", step.name], array: false)))
            scripts.append(("shards", step.name, "shards-\(step.name).sh", script(
                role: "shards", step: step.name, arguments: ["--step", step.name, "--shard", "\"${SLURM_ARRAY_TASK_ID}/\(options.shards)\""], array: true)))
        }
        scripts.append(("merge", nil, "merge.sh", script(role: "merge", step: nil, arguments: [], array: false)))
        return scripts.map { (role: $0.0, step: $0.1, name: $0.2, text: $0.3) }
    }

    /// The scripts, as `--dry-run` prints them, and the `sbatch` lines that would submit them.
    public func dryRun() throws -> String {
        var text: [String] = []
        var previous: String?
        for (index, script) in try scripts().enumerated() {
            let id = "$JOB\(index + 1)"
            text.append("# ---- \(folder)/\(script.name)")
            text.append(script.text)
            var line = "# JOB\(index + 1)=$(sbatch --parsable"
            if script.role == "shards" { line += " --array=0-\(options.shards - 1)" }
            if let previous { line += " --dependency=afterok:\(previous) --kill-on-invalid-dep=yes" }
            line += " \(folder)/\(script.name))"
            text.append(line)
            previous = id
        }
        return text.joined(separator: "\n")
    }

    // MARK: submitting

    /// Writes the scripts and submits the whole chain; `force` first clears the job's state
    /// and shards so that every step runs again.
    public func submit(force: Bool) throws -> Submission {
        try refuseWhileActive()
        if force {
            try? FileManager.default.removeItem(atPath: JobState.path(in: plan.outputFolder))
            try? FileManager.default.removeItem(atPath: plan.outputFolder + "/shards")
        }
        let written = try writeScripts()
        var jobs: [SubmittedJob] = []
        var previous: [String] = []
        for script in written {
            let tasks = script.role == "shards" ? Array(0..<options.shards) : nil
            let id = try sbatch(script.path, tasks: tasks, after: previous)
            jobs.append(SubmittedJob(role: script.role, step: script.step, id: id, tasks: tasks, script: script.path, dependsOn: previous))
            log("submitted \(script.role)\(script.step.map { " \($0)" } ?? "") as Slurm job \(id)" + (tasks.map { " (array 0-\($0.count - 1))" } ?? ""))
            previous = [id]
        }
        let submission = Submission(job: plan.file, shards: options.shards, submitted: Date(), jobs: jobs)
        try save(submission)
        return submission
    }

    /// Resubmits what is missing: shards not done and not running, and the prepare and merge
    /// jobs after them. Old jobs still waiting are cancelled first (their dependencies are
    /// replaced); shard tasks still running are kept and waited for.
    public func resume() throws -> Submission {
        let old = try loadSubmission()
        guard old.shards == options.shards else {
            throw SimjobError("\(submissionPath): the job was submitted with \(old.shards) shards, not \(options.shards); resume with --shards \(old.shards)")
        }
        let states = try slurmStates(old)
        var keep: [String: String] = [:]  // running shard task id -> step
        var cancel: [String] = []
        for job in old.jobs {
            if job.role == "shards", let tasks = job.tasks {
                for task in tasks {
                    let id = "\(job.id)_\(task)"
                    let state = states[id] ?? states[job.id] ?? ""
                    if SlurmRunner.running.contains(state) { keep[id] = job.step } else if SlurmRunner.waiting.contains(state) { cancel.append(id) }
                }
            } else if SlurmRunner.waiting.contains(states[job.id] ?? "") || SlurmRunner.running.contains(states[job.id] ?? "") {
                cancel.append(job.id)
            }
        }
        if !cancel.isEmpty {
            log("cancelling jobs of the earlier submission that would wait on replaced ones: \(cancel.joined(separator: " "))")
            _ = try command("scancel", cancel)
        }
        let written = try writeScripts()
        let state = (try? JobState.load(folder: plan.outputFolder, job: plan.file).0) ?? JobState(job: plan.file)
        var jobs: [SubmittedJob] = []
        var previous: [String] = []
        var index = 0
        for step in runner.shardedSteps {
            let prepare = written[index], shards = written[index + 1]
            index += 2
            if state.reasonToRun(step, folder: plan.outputFolder) == nil {
                log("step \(step.name): merged already")
                continue
            }
            let prepareID = try sbatch(prepare.path, tasks: nil, after: previous)
            jobs.append(SubmittedJob(role: "prepare", step: step.name, id: prepareID, tasks: nil, script: prepare.path, dependsOn: previous))
            let store = ShardStore(outputFolder: plan.outputFolder, step: step, job: plan.file)
            let running = keep.filter { $0.value == step.name }.map(\.key).sorted()
            let runningTasks = Set(running.compactMap { $0.split(separator: "_").last.flatMap { Int($0) } })
            let needed = (0..<options.shards).filter { !store.state(ShardID(index: $0, count: options.shards)).isDone && !runningTasks.contains($0) }
            previous = [prepareID] + running
            if !needed.isEmpty {
                let id = try sbatch(shards.path, tasks: needed, after: [prepareID])
                jobs.append(SubmittedJob(role: "shards", step: step.name, id: id, tasks: needed, script: shards.path, dependsOn: [prepareID]))
                log("step \(step.name): resubmitted shards \(needed.map(String.init).joined(separator: ",")) as Slurm job \(id)"
                    + (running.isEmpty ? "" : "; waiting for running tasks \(running.joined(separator: " "))"))
                previous = [id] + running
            } else {
                log("step \(step.name): every shard is done or running")
            }
        }
        let merge = written.last!
        let mergeID = try sbatch(merge.path, tasks: nil, after: previous)
        jobs.append(SubmittedJob(role: "merge", step: nil, id: mergeID, tasks: nil, script: merge.path, dependsOn: previous))
        log("submitted merge as Slurm job \(mergeID)")
        let submission = Submission(job: plan.file, shards: options.shards, submitted: Date(), jobs: jobs)
        try save(submission)
        return submission
    }

    /// Refuses a new submission while jobs of the recorded one are still queued or running.
    func refuseWhileActive() throws {
        guard FileManager.default.fileExists(atPath: submissionPath), let old = try? loadSubmission() else { return }
        let states = try slurmStates(old)
        let active = states.filter { SlurmRunner.waiting.contains($0.value) || SlurmRunner.running.contains($0.value) }.map(\.key).sorted()
        guard active.isEmpty else {
            throw SimjobError("\(plan.outputFolder): Slurm jobs of an earlier submission are still queued or running (\(active.joined(separator: " "))); follow them with --status, resubmit failed shards with --resume, or cancel them with scancel")
        }
    }

    func writeScripts() throws -> [(role: String, step: String?, path: String)] {
        do {
            try FileManager.default.createDirectory(atPath: folder + "/logs", withIntermediateDirectories: true)
        } catch {
            throw SimjobError("\(folder): cannot create the folder for batch scripts and logs (a file of that name, or no permission?)")
        }
        return try scripts().map { script in
            let path = absolute(folder + "/" + script.name)
            try AtomicDataFile.write(Data(script.text.utf8), to: path)
            chmod(path, 0o755)
            return (script.role, script.step, path)
        }
    }

    /// Submits a script; returns its job id.
    func sbatch(_ script: String, tasks: [Int]?, after: [String]) throws -> String {
        var arguments = ["--parsable"]
        if let tasks { arguments.append("--array=" + SlurmRunner.ranges(tasks)) }
        if !after.isEmpty { arguments += ["--dependency=afterok:" + after.joined(separator: ":"), "--kill-on-invalid-dep=yes"] }
        arguments.append(script)
        let output = try command("sbatch", arguments)
        let id = output.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw SimjobError("sbatch \(script): unexpected answer '\(output.trimmingCharacters(in: .whitespacesAndNewlines))' (no job id)")
        }
        return id
    }

    /// `0-3`, `1,3`, `0-2,5`: Slurm's array syntax for a sorted list of indices.
    static func ranges(_ values: [Int]) -> String {
        var parts: [String] = []
        var start = values.first ?? 0, end = start
        for value in values.dropFirst() {
            if value == end + 1 { end = value; continue }
            parts.append(start == end ? "\(start)" : "\(start)-\(end)")
            start = value; end = value
        }
        if !values.isEmpty { parts.append(start == end ? "\(start)" : "\(start)-\(end)") }
        return parts.joined(separator: ",")
    }

    // MARK: status

    static let waiting: Set<String> = ["PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED", "RESV_DEL_HOLD", "SPECIAL_EXIT"]
    static let running: Set<String> = ["RUNNING", "CONFIGURING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING"]

    /// Each recorded job's (and array task's) state as Slurm reports it; jobs Slurm no longer
    /// knows are absent.
    func slurmStates(_ submission: Submission) throws -> [String: String] {
        try slurmStatesAndReasons(submission).states
    }

    /// States, and Slurm's reason where it gives one (DependencyNeverSatisfied, ...).
    func slurmStatesAndReasons(_ submission: Submission) throws -> (states: [String: String], reasons: [String: String]) {
        var states: [String: String] = [:], reasons: [String: String] = [:]
        for job in submission.jobs {
            // One query per job: squeue rejects the whole list when one id is no longer known.
            guard let output = try? command("squeue", ["-h", "-r", "-t", "all", "-j", job.id, "-o", "%i %T %r"]) else { continue }
            for line in output.split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count >= 2 else { continue }
                states[String(parts[0])] = String(parts[1])
                if parts.count >= 3, parts[2] != "None" { reasons[String(parts[0])] = String(parts[2]) }
            }
        }
        return (states, reasons)
    }

    public func loadSubmission() throws -> Submission {
        guard let data = FileManager.default.contents(atPath: submissionPath) else {
            throw SimjobError("\(submissionPath): no submission recorded; submit the job first with simjob slurm \(plan.file) --shards N")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let submission = try? decoder.decode(Submission.self, from: data), submission.format == "simjob-slurm" else {
            throw SimjobError("\(submissionPath): not a submission record simjob wrote (damaged or edited); submit again")
        }
        return submission
    }

    func save(_ submission: Submission) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        try AtomicDataFile.write(try encoder.encode(submission), to: submissionPath)
    }

    /// One shard's or job's state for `--status`.
    public struct StatusLine: Sendable {
        public var step: String?
        public var shard: Int?
        /// done, merged, running, pending, failed, missing (shards); a Slurm state (jobs).
        public var state: String
        public var detail: String
    }

    /// Which shards are done, running, pending or failed, and the prepare and merge jobs' states.
    public func status() throws -> (lines: [StatusLine], text: String) {
        let submission = try loadSubmission()
        let (states, reasons) = try slurmStatesAndReasons(submission)
        let jobState = (try? JobState.load(folder: plan.outputFolder, job: plan.file).0) ?? JobState(job: plan.file)
        var lines: [StatusLine] = []
        var text = ["job \(plan.name) (\(plan.outputFolder)): \(submission.shards) shards per step, submitted \(ISO8601DateFormatter().string(from: submission.submitted))"]
        for step in runner.shardedSteps {
            if jobState.reasonToRun(step, folder: plan.outputFolder) == nil {
                lines.append(StatusLine(step: step.name, shard: nil, state: "merged", detail: ""))
                text.append("  step \(step.name) (\(step.kind.rawValue)): merged")
                continue
            }
            let store = ShardStore(outputFolder: plan.outputFolder, step: step, job: plan.file)
            var counts: [String: Int] = [:]
            var details: [String] = []
            for index in 0..<submission.shards {
                let shard = ShardID(index: index, count: submission.shards)
                // The latest submission of this task decides (a resubmission replaces an old one).
                let task = submission.jobs.last { $0.role == "shards" && $0.step == step.name && ($0.tasks ?? []).contains(index) }
                let taskID = task.map { "\($0.id)_\(index)" }
                let slurm = taskID.flatMap { states[$0] ?? states[task!.id] }
                var state: String
                var detail = ""
                switch store.state(shard) {
                case .done:
                    state = "done"
                case .damaged(let why), .foreign(let why):
                    state = "failed"; detail = why
                case .missing:
                    if let slurm {
                        if SlurmRunner.running.contains(slurm) { state = "running" } else if SlurmRunner.waiting.contains(slurm) { state = "pending" } else if slurm == "COMPLETED" {
                            state = "failed"; detail = "the task completed without a shard file"
                        } else {
                            state = "failed"; detail = slurm + (reasons[taskID!].map { ", \($0)" } ?? "")
                        }
                    } else {
                        state = taskID == nil ? "missing" : "failed"
                        detail = taskID == nil ? "never submitted" : "unknown to Slurm now, no shard file"
                    }
                }
                counts[state, default: 0] += 1
                lines.append(StatusLine(step: step.name, shard: index, state: state, detail: detail))
                if state != "done" { details.append("\(index) \(state)" + (taskID.map { " (\($0)\(detail.isEmpty ? "" : ", \(detail)"))" } ?? (detail.isEmpty ? "" : " (\(detail))"))) }
            }
            let summary = ["done", "running", "pending", "failed", "missing"].compactMap { key in counts[key].map { "\($0) \(key)" } }.joined(separator: ", ")
            text.append("  step \(step.name) (\(step.kind.rawValue)): \(summary)" + (details.isEmpty ? "" : "; " + details.joined(separator: "; ")))
        }
        for job in submission.jobs where job.role != "shards" {
            let state = states[job.id] ?? "UNKNOWN"
            lines.append(StatusLine(step: job.step, shard: nil, state: state, detail: job.id))
            text.append("  \(job.role)\(job.step.map { " \($0)" } ?? "") (job \(job.id)): \(state)" + (reasons[job.id].map { " (\($0))" } ?? ""))
        }
        let failed = lines.contains { $0.state == "failed" } || submission.jobs.contains { ["FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"].contains(states[$0.id] ?? "") }
        if failed { text.append("resubmit what failed with: simjob slurm \(options.jobArguments.joined(separator: " ")) --shards \(submission.shards) --resume") }
        return (lines, text.joined(separator: "\n"))
    }

    // MARK: helpers

    func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : options.workingDirectory + "/" + path
    }

    func quoted(_ text: String) -> String {
        text.allSatisfy({ $0.isLetter || $0.isNumber || "/._-=:,+@%".contains($0) }) && !text.isEmpty ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Runs a Slurm client command; its standard output, or an error with its message.
    func command(_ name: String, _ arguments: [String]) throws -> String {
        guard let path = SlurmRunner.find(name) else {
            throw SimjobError("\(name): not found on PATH; simjob slurm needs Slurm's client commands (Debian package slurm-client)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last.map(String.init) ?? ""
            throw SimjobError("\(name) \(arguments.joined(separator: " ")): failed (exit \(process.terminationStatus))\(message.isEmpty ? "" : ": \(message)")")
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func find(_ name: String) -> String? {
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}
