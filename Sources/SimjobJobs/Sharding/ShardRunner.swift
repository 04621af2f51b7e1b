import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobOperations

extension JobRunner {
    /// One line of a shard run's summary.
    public struct ShardReport: Sendable {
        public var step: String
        public var shard: ShardID
        /// false: already done (same settings and inputs, file intact), or the step is merged.
        public var ran: Bool
        public var seconds: Double
        public var peakMemoryBytes: Int
        public var summary: String
        public var output: String
    }

    /// The kinds of step that run in shards, for messages.
    public static let shardableKinds = "groundtruth, knn_graph (method exact), dedup (mode exact) and train (its encoding)"

    /// The shard store of `step`, or nil when its kind or settings do not shard.
    func shardStore(_ step: PlannedStep) -> ShardStore? {
        guard let action = step.action as? any ShardableAction, action.isShardable else { return nil }
        return ShardStore(outputFolder: plan.outputFolder, step: step, job: plan.file)
    }

    /// The steps that run in shards.
    public var shardedSteps: [PlannedStep] { plan.steps.filter { shardStore($0) != nil } }

    /// Runs shard `shard` of the next shardable step (the first one not merged yet), or of
    /// step `only`. Every step before it must be done (`run --prepare STEP` does them); the
    /// steps after it wait for its merge.
    ///
    /// Shards share the job's folder with each other: they never write the job's state, each
    /// locks only its own shard, and its data file and manifest appear whole or not at all. A
    /// shard already done with the same settings and inputs, its file intact, is not run again.
    @discardableResult
    public func runShard(_ shard: ShardID, step only: String? = nil) throws -> [ShardReport] {
        let folder = plan.outputFolder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let (state, warning) = try JobState.load(folder: folder, job: plan.file)
        if let warning { logger?.warning("\(warning)") }
        var target: PlannedStep?
        if let only {
            guard let step = plan.steps.first(where: { $0.name == only }) else {
                throw SimjobError("\(plan.file): no step named '\(only)' (steps: \(plan.steps.map(\.name).joined(separator: ", ")))")
            }
            guard shardStore(step) != nil else {
                throw SimjobError("\(plan.file): step '\(only)' (\(step.kind.rawValue)) does not run in shards; \(JobRunner.shardableKinds) do")
            }
            target = step
        }
        for step in plan.steps {
            let upToDate = state.reasonToRun(step, folder: folder) == nil
            if let chosen = target, step.index > chosen.index { break }
            let isTarget = target.map { $0.name == step.name } ?? (shardStore(step) != nil)
            if isTarget {
                if upToDate {
                    log("step \(step.name): merged already, nothing to do for shard \(shard)")
                    if target != nil { return [ShardReport(step: step.name, shard: shard, ran: false, seconds: 0, peakMemoryBytes: 0, summary: "merged already", output: step.output)] }
                    continue
                }
                return [try runShard(shard, of: step)]
            }
            if upToDate { continue }
            let next = target ?? plan.steps.dropFirst(step.index + 1).first { shardStore($0) != nil && state.reasonToRun($0, folder: folder) != nil }
            guard let next else {
                throw SimjobError("\(plan.file): no step left to run in shards (every shardable step is merged, or none comes after step '\(step.name)', which has not run): run the job without --shard")
            }
            throw SimjobError("step '\(step.name)' (\(step.kind.rawValue)) has not run, and the shards of step '\(next.name)' need it: run `simjob run \(plan.file) --prepare \(next.name)` first (the Slurm preparation job does)")
        }
        throw SimjobError("\(plan.file): no step runs in shards (\(JobRunner.shardableKinds) do), or all of them are merged: run the job without --shard")
    }

    /// Runs one shard of one step: data file, then manifest, each by temporary name and rename.
    func runShard(_ shard: ShardID, of step: PlannedStep) throws -> ShardReport {
        guard let store = shardStore(step), let action = step.action as? any ShardableAction else {
            throw SimjobError("step '\(step.name)' does not run in shards")
        }
        do {
            try FileManager.default.createDirectory(atPath: store.folder, withIntermediateDirectories: true)
        } catch {
            throw SimjobError("\(store.folder): cannot create the shards' folder (a file of that name, or no permission?)")
        }
        let stem = (store.dataPath(shard) as NSString).deletingPathExtension
        let lock = try RunLock(path: stem + ".lock", busy: "shard \(shard) of step '\(step.name)' is running in another process")
        defer { lock.release() }
        let others = store.countsPresent().filter { $0 != shard.count }
        guard others.isEmpty else {
            throw SimjobError("step '\(step.name)': \(store.folder) holds shards of a cut into \(others.map(String.init).joined(separator: ", ")) shards, not \(shard.count); run those, or remove the folder to start over with \(shard.count)")
        }
        let header = "step \(step.name) (\(step.kind.rawValue)) shard \(shard)"
        if !force, case .done(let manifest) = store.state(shard) {
            log("\(header): done already (\(manifest.summary)), not run again")
            return ShardReport(step: step.name, shard: shard, ran: false, seconds: manifest.seconds, peakMemoryBytes: 0, summary: manifest.summary,
                               output: store.dataPath(shard))
        }
        if action.needsPreparation {
            let prepared = store.preparedState()
            guard prepared.isDone else {
                throw SimjobError("step '\(step.name)': its shards share a preparation (\(store.preparedPath)) that is \(prepared.label); run `simjob run \(plan.file) --prepare \(step.name)` first (the Slurm preparation job does)")
            }
        }
        let previous = store.state(shard)
        if previous != .missing { log("\(header): replacing a shard that is \(previous.label)") }
        // The old manifest goes first: a data file without one is a shard not done.
        unlink(store.manifestPath(shard))
        log("\(header): running")
        ProcessMemory.resetPeak()
        InputRegistry.reset()
        let started = ProgressDisplay.now()
        try JobRunner.testDelay()
        let out = try AtomicOutputFile(store.dataPath(shard))
        let (rows, summary) = try action.runShard(shard, into: out.file, step: step, runner: self)
        try out.file.setAttribute("simjob_shard", .string("\(shard)"))
        try out.file.setAttribute("simjob_step", .string(step.name))
        try out.file.setAttribute("simjob_fingerprint", .string(step.fingerprint))
        try out.commit()
        let seconds = ProgressDisplay.now() - started
        try store.writeManifest(shard, rows: rows, seconds: seconds, summary: summary)
        log("\(header): done in \(String(format: "%.2f", seconds)) s; \(summary)")
        return ShardReport(step: step.name, shard: shard, ran: true, seconds: seconds, peakMemoryBytes: ProcessMemory.peakResidentBytes,
                           summary: summary, output: store.dataPath(shard))
    }

    /// The shared work of `step`'s shards, when its kind has some: done once, before them,
    /// by `run --prepare STEP` (a preparation already there for the same settings is kept).
    func prepareShards(of step: PlannedStep) throws {
        guard let store = shardStore(step), let action = step.action as? any ShardableAction, action.needsPreparation else { return }
        let header = "step \(step.name) (\(step.kind.rawValue)) preparation"
        if !force, case .done(let manifest) = store.preparedState() {
            log("\(header): done already (\(manifest.summary))")
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: store.folder, withIntermediateDirectories: true)
        } catch {
            throw SimjobError("\(store.folder): cannot create the shards' folder (a file of that name, or no permission?)")
        }
        // Shards made from another preparation would not match it.
        if let names = try? FileManager.default.contentsOfDirectory(atPath: store.folder) {
            for name in names where name.hasPrefix("shard-") && name.hasSuffix(".json") { unlink(store.folder + "/" + name) }
        }
        unlink(store.preparedManifestPath)
        log("\(header): running")
        InputRegistry.reset()
        let started = ProgressDisplay.now()
        let out = try AtomicOutputFile(store.preparedPath)
        let summary = try action.prepare(into: out.file, step: step, runner: self)
        try out.commit()
        let seconds = ProgressDisplay.now() - started
        try store.writePreparedManifest(seconds: seconds, summary: summary)
        log("\(header): done in \(String(format: "%.2f", seconds)) s; \(summary)")
    }

    /// For tests of schedulers only: `SIMJOB_TEST_SHARD_DELAY=SECONDS` makes a shard wait
    /// before its work, so that a test can cancel it while it runs. Ctrl-C and SIGTERM stop
    /// the wait like any other work.
    static func testDelay() throws {
        guard let text = ProcessInfo.processInfo.environment["SIMJOB_TEST_SHARD_DELAY"], let seconds = Double(text), seconds > 0 else { return }
        let end = ProgressDisplay.now() + seconds
        while ProgressDisplay.now() < end {
            try Cancellation.check()
            usleep(50_000)
        }
    }

    /// The summary printed after a shard run.
    public static func shardSummary(_ reports: [ShardReport], plan: JobPlan) -> String {
        reports.map { report in
            "job \(plan.name): step \(report.step) shard \(report.shard) " + (report.ran ? String(format: "ran in %.2f s", report.seconds) : "up to date")
                + (report.ran ? ", peak memory \(formatBytes(report.peakMemoryBytes))" : "") + "; \(report.summary)\n  -> \(report.output)"
        }.joined(separator: "\n")
    }
}
