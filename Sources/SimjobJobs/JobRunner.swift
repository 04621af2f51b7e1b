import Foundation
import Logging
import SimjobAlgorithms
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
            throw JobRunError("\(folder): cannot create the job's output folder (a file of that name, or no permission?)")
        }
        let lock = try RunLock(folder: folder)
        defer { lock.release() }
        removeStaleTemporaryFiles(in: folder)
        var state = JobState.load(folder: folder, job: plan.file)
        var reports: [StepReport] = []
        for step in plan.steps {
            let header = "step \(step.index + 1)/\(plan.steps.count) \(step.name) (\(step.kind.rawValue))"
            let reason = force ? "--force" : state.reasonToRun(step)
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
            let summary = try execute(step)
            let seconds = ProgressDisplay.now() - started
            let peak = ProcessMemory.peakResidentBytes
            state.steps[step.name] = JobState.StepRecord(
                kind: step.kind.rawValue, fingerprint: step.fingerprint, outputs: step.outputs, seconds: seconds,
                finished: Date(), summary: summary,
                files: Dictionary(uniqueKeysWithValues: step.outputs.compactMap { path in FileFingerprint(path: path).map { (path, $0) } }))
            try state.save(folder: folder)
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
        switch step.action {
        case .generate(let config):
            let summary = try Generate.run(config, output: step.output, threads: nil, progressStyle: progressStyle, logger: logger)
            let rate = Double(config.n + config.queries) / max(summary.seconds, 1e-9)
            return "\(config.n) x \(config.dim) train, \(config.queries) queries"
                + (config.duplicates > 0 ? ", \(summary.plantedRows) planted duplicates" : "")
                + String(format: " (%.0f rows/s)", rate)
        case .groundtruth(let input, let config):
            let stats = try ExactOperations.groundTruth(input: input, output: step.output, config: config, progressStyle: progressStyle)
            return String(format: "%d queries x %d rows, k=%d (%.0f queries/s, %.0f GFLOP/s)", stats.rows, stats.baseRows, stats.k,
                          Double(stats.rows) / max(stats.seconds, 1e-9), stats.gflops)
        case .knnGraph(let input, let config):
            let stats = try ExactOperations.knnGraph(input: input, output: step.output, config: config, progressStyle: progressStyle)
            return String(format: "%d rows, k=%d, %@ (%.0f rows/s, %.0f GFLOP/s)", stats.rows, stats.k, stats.metric.rawValue,
                          Double(stats.rows) / max(stats.seconds, 1e-9), stats.gflops)
        case .approxKNNGraph(let input, let config):
            let stats = try ExactOperations.approxKNNGraph(input: input, output: step.output, config: config, logger: logger, progressStyle: progressStyle)
            return String(format: "%d rows, k=%d, approximate: %d cells, nprobe=%d (%.0f rows/s, %.0f candidates per row)", stats.rows, stats.k,
                          stats.partitions, stats.nprobe, Double(stats.rows) / max(stats.seconds, 1e-9), stats.candidatesPerRow)
        case .train(let input, let config):
            let (index, stats) = try QuantizationOperations.train(input: input, output: step.output, config: config, logger: logger, progressStyle: progressStyle)
            return String(format: "IVF-PQ nlist=%d m=%d on %d vectors (%.0f vectors/s), index %@", index.nlist, index.pq.m, stats.vectors,
                          Double(stats.vectors) / max(stats.totalSeconds, 1e-9), formatBytes(index.sizeInBytes))
        case .search(let index, let queries, let base, let config):
            let stats = try QuantizationOperations.search(index: index, queries: queries, output: step.output, config: config, base: base)
            return String(format: "%d queries, nprobe=%d, refine=%d (%.0f queries/s)", stats.queries, config.nprobe, config.refine, stats.queriesPerSecond)
        case .evaluate(let input, let index, let config, let annBenchmarks):
            let outputs = try EvaluateOperation.run(
                dataset: input, index: index, config: config, output: step.output, plot: step.outputs[1],
                annBenchmarksDirectory: annBenchmarks ? step.outputs[2] : nil, logger: logger)
            if progressStyle != .silent { FileHandle.standardError.write(Data((EvaluationOutput.table(outputs.report) + "\n").utf8)) }
            let best = outputs.report.rows.max { $0.recall < $1.recall }
            return "\(outputs.report.rows.count) settings, best recall \(String(format: "%.4f", best?.recall ?? 0)); report \(step.output), plot \(outputs.plotPath)"
        case .evaluateGraph(let graph, let truth, let sample, let threads):
            let result = try GraphEvaluation.run(graph: graph, truth: truth, input: nil, sample: sample, threads: threads)
            let out = try AtomicOutputFile(step.output)
            try GraphEvaluation.write(result, graph: graph, truth: truth, to: out.file)
            try out.commit()
            return String(format: "graph recall %.4f (epsilon %.4f, id %.4f) on %d of %d rows against %@", result.scores.knn,
                          result.scores.epsilon, result.scores.ids, result.sampled, result.rows, truth ?? "exact neighbours computed here")
        case .dedup(let input, let config, let writePairs, let writeKept):
            let result = try DedupOperation.run(
                input: input, output: step.output, config: config, writePairs: writePairs,
                writeKept: writeKept ? step.outputs[1] : nil, logger: logger, progressStyle: progressStyle)
            let primary = result.byThreshold[0]
            return String(format: "%d pairs, %d groups, %d of %d rows removed at threshold %g (%.0f rows/s)", primary.pairs, primary.groupCount,
                          primary.rowsRemoved, result.rows, primary.threshold, Double(result.rows) / max(result.seconds, 1e-9))
        }
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

    init(folder: String) throws {
        path = folder + "/.simjob-run.lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw JobRunError("\(path): cannot create the job's lock file: \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            Glibc.close(descriptor)
            throw JobRunError("\(folder): another simjob run is using this output folder (\(holder.isEmpty ? "holder unknown" : holder)); wait for it to finish or stop it")
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
