import Foundation
import Logging
import SimjobAlgorithms
import SimjobOperations
import SimjobHDF5
import SimjobKernels

/// Runs a validated job: each step in order, skipping those already done with the same
/// fingerprint, recording each finished step before starting the next.
///
/// Every output is written under a temporary name and renamed when complete, so an interrupted
/// step (Ctrl-C stops at the next block boundary; SIGKILL stops anywhere) leaves no partial
/// file, and the rerun starts again from that step.
public struct JobRunner {
    public let plan: JobPlan
    public var force = false
    public var logger: Logger?
    public var progressStyle: ProgressDisplay.Style = .automatic
    /// Stop before this step (`run --prepare STEP`: what must exist before its shards run).
    public var stopBefore: String?

    public init(plan: JobPlan) {
        self.plan = plan
    }

    /// One line of the final summary.
    public struct StepReport: Sendable {
        public var name: String
        public var kind: StepKind
        public var ran: Bool
        public var seconds: Double
        public var peakMemoryBytes: Int
        public var summary: String
        public var outputs: [String]
    }

    @discardableResult
    public func run() throws -> [StepReport] {
        let folder = plan.outputFolder
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw SimjobError("\(folder): cannot create the job's output folder (a file of that name, or no permission?)")
        }
        let lock = try RunLock(folder: folder)
        defer { lock.release() }
        removeStaleTemporaryFiles(in: folder)
        var (state, warning) = try JobState.load(folder: folder, job: plan.file)
        if let warning { logger?.warning("\(warning)") }
        var reports: [StepReport] = []
        for step in plan.steps {
            if step.name == stopBefore {
                if state.reasonToRun(step, folder: folder) != nil { try prepareShards(of: step) }
                log("step \(step.index + 1)/\(plan.steps.count) \(step.name) (\(step.kind.rawValue)): every step before it is done; its shards can run")
                break
            }
            let header = "step \(step.index + 1)/\(plan.steps.count) \(step.name) (\(step.kind.rawValue))"
            let reason = force ? "--force" : state.reasonToRun(step, folder: folder)
            if reason == nil, let record = state.steps[step.name] {
                log("\(header): up to date, skipped")
                reports.append(StepReport(name: step.name, kind: step.kind, ran: false, seconds: record.seconds, peakMemoryBytes: 0,
                                          summary: record.summary, outputs: step.outputs))
                continue
            }
            try Cancellation.check()
            log("\(header): running (\(reason ?? "not run yet"))")
            ProcessMemory.resetPeak()
            // Each step is a command of its own: the files it may not overwrite are those it reads.
            InputRegistry.reset()
            let started = ProgressDisplay.now()
            // A step whose shards ran elsewhere is merged from them; one without shards runs here.
            let shards = shardStore(step)
            let manifests = try shards?.readyToMerge(jobFile: plan.file) ?? []
            let summary: String
            if let shards, let action = step.action as? any ShardableAction, !manifests.isEmpty {
                log("\(header): merging \(manifests.count) shards from \(shards.folder)")
                if action.needsPreparation { _ = try shards.requirePreparation(jobFile: plan.file) }
                summary = try Provenance.$userTags.withValue(plan.tags) {
                    try action.merge(manifests.map { shards.dataPath(ShardID(index: $0.shard, count: $0.shards)) }, manifests: manifests,
                                     step: step, runner: self)
                }
            } else {
                summary = try Provenance.$userTags.withValue(plan.tags) { try execute(step) }
            }
            let seconds = ProgressDisplay.now() - started
            let peak = ProcessMemory.peakResidentBytes
            state.steps[step.name] = JobState.StepRecord(
                kind: step.kind.rawValue, fingerprint: step.fingerprint, outputs: step.outputs, seconds: seconds,
                finished: Date(), summary: summary,
                files: Dictionary(uniqueKeysWithValues: step.outputs.compactMap { path in
                    FileFingerprint(path: path).map { (JobState.key(path, folder: folder), $0) }
                }))
            try state.save(folder: folder)
            // The merged output is recorded: the shards have served.
            if !manifests.isEmpty { shards?.remove() }
            log("\(header): done in \(String(format: "%.2f", seconds)) s; \(summary)")
            reports.append(StepReport(name: step.name, kind: step.kind, ran: true, seconds: seconds, peakMemoryBytes: peak,
                                      summary: summary, outputs: step.outputs))
        }
        return reports
    }

    func log(_ text: String) {
        if let logger { logger.info("\(text)") }
    }

    /// Temporary outputs of earlier runs that were killed before they could clean up.
    func removeStaleTemporaryFiles(in folder: String) {
        for path in OutputPath.removeStalePartials(in: folder) { log("removed \(path), left by a run that was killed") }
    }

    /// Runs one step through the same operations as the commands; returns its one-line summary.
    func execute(_ step: PlannedStep) throws -> String {
        try step.action.run(step, runner: self)
    }

    /// The table printed at the end of a run.
    public static func summaryTable(_ reports: [StepReport], plan: JobPlan) -> String {
        var lines = ["job \(plan.name): \(reports.filter(\.ran).count) step(s) run, \(reports.filter { !$0.ran }.count) up to date; outputs in \(plan.outputFolder)"]
        lines.append("  step             kind         status      time   peak memory  summary")
        for report in reports {
            lines.append("  " + report.name.padding(toLength: 16, withPad: " ", startingAt: 0) + " "
                         + report.kind.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0) + " "
                         + (report.ran ? "ran    " : "skipped") + String(format: " %7.2fs", report.seconds) + "  "
                         + (report.ran ? formatBytes(report.peakMemoryBytes) : "-").padding(toLength: 11, withPad: " ", startingAt: 0) + "  "
                         + report.summary)
            for output in report.outputs { lines.append("      -> \(output)") }
        }
        let plots = reports.flatMap(\.outputs).filter { $0.hasSuffix(".svg") }
        if !plots.isEmpty { lines.append("recall-vs-QPS plot\(plots.count > 1 ? "s" : ""): " + plots.joined(separator: ", ")) }
        let evaluations = reports.filter { $0.kind == .evaluate && $0.outputs.count > 1 }.map { $0.outputs[0] }
        if !evaluations.isEmpty { lines.append("evaluation report\(evaluations.count > 1 ? "s" : ""): " + evaluations.joined(separator: ", ") + " (group evaluation)") }
        return lines.joined(separator: "\n")
    }
}

/// One `run` per output folder at a time: an advisory lock (flock) on `FOLDER/.simjob-run.lock`,
/// holding a line that names the holder. The kernel drops it when the holder exits, however it
/// ends (a killed run leaves no stale lock).
final class RunLock {
    let path: String
    private var descriptor: Int32

    convenience init(folder: String) throws {
        try self.init(path: folder + "/.simjob-run.lock", busy: "\(folder): another simjob run is using this output folder")
    }

    /// Locks `path`; when another process holds it, throws `busy` with the holder's line.
    init(path: String, busy: String) throws {
        self.path = path
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw SimjobError("\(path): cannot create the job's lock file: \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            Glibc.close(descriptor)
            throw SimjobError("\(busy) (\(holder.isEmpty ? "holder unknown" : holder)); wait for it to finish or stop it")
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let line = "pid \(getpid()) on \(String(cString: host)), started \(ISO8601DateFormatter().string(from: Date())): \(CommandLine.arguments.joined(separator: " "))\n"
        ftruncate(descriptor, 0)
        _ = line.withCString { write(descriptor, $0, strlen($0)) }
    }

    func release() {
        guard descriptor >= 0 else { return }
        ftruncate(descriptor, 0)
        flock(descriptor, LOCK_UN)
        Glibc.close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
