import ArgumentParser
import Foundation
import SimjobAlgorithms
import SimjobOperations
import SimjobJobs

/// Options shared by run and validate: the job file and overrides.
struct JobOptions: ParsableArguments {
    @Argument(help: "A job file (YAML), e.g. Jobs/quickstart.yaml.") var job: String
    @Option(name: .customLong("set"), help: "Override a step option: STEP.KEY=VALUE (repeatable), e.g. data.n=2000.")
    var assignments: [String] = []
    @Option(name: .customLong("input"), help: "Override a named input: NAME=PATH (repeatable).") var inputs: [String] = []
    @Option(help: "Override the job's output folder.") var output: String?

    func validate() throws {
        for assignment in assignments {
            let parts = assignment.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0].split(separator: ".").count == 2, !parts[0].hasPrefix("."), !parts[0].hasSuffix(".") else {
                throw ValidationError("--set takes STEP.KEY=VALUE (got '\(assignment)')")
            }
        }
        for input in inputs {
            let parts = input.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw ValidationError("--input takes NAME=PATH (got '\(input)')") }
        }
    }

    func document() throws -> JobDocument {
        var document = try JobDocument(path: job)
        for assignment in assignments { try document.set(assignment) }
        for input in inputs { try document.setInput(input) }
        if let output { document.setOutput(output) }
        return document
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run every step of a job file, skipping steps already done with the same settings and inputs.")

    @OptionGroup var job: JobOptions
    @Flag(help: "Run every step again, done or not (with --shard: the shard again).") var force = false
    @Option(help: ArgumentHelp(
        "Run shard I of N (counted from 0) of the next shardable step (groundtruth, knn_graph exact, dedup exact, train: its encoding), or of --step; '/N' takes I from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX. A later run without --shard merges the shards.",
        valueName: "I/N")) var shard: String?
    @Option(help: ArgumentHelp("With --shard: the step to run a shard of.", valueName: "NAME")) var step: String?
    @Option(help: ArgumentHelp("Run every step before STEP and the work its shards share, then stop.", valueName: "STEP")) var prepare: String?
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if step != nil && shard == nil { throw ValidationError("--step goes with --shard I/N") }
        if prepare != nil && shard != nil { throw ValidationError("--prepare and --shard exclude each other: prepare first, then run the shards") }
    }

    func run() throws {
        common.warnAboutBLAS()
        let plan = try JobPlanner.plan(job.document())
        var runner = JobRunner(plan: plan)
        runner.force = force
        runner.logger = simjobLogger
        runner.progressStyle = common.progressStyle
        if let shard {
            let id = try ShardID(parsing: shard)
            let reports = try runner.runShard(id, step: step)
            printLine(JobRunner.shardSummary(reports, plan: plan))
            return
        }
        if let prepare {
            guard plan.steps.contains(where: { $0.name == prepare }) else {
                throw SimjobError("\(plan.file): no step named '\(prepare)' (steps: \(plan.steps.map(\.name).joined(separator: ", ")))")
            }
            runner.stopBefore = prepare
        }
        let reports = try runner.run()
        printLine(JobRunner.summaryTable(reports, plan: plan))
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a job file without running it: every problem, with its line and key.")

    @OptionGroup var job: JobOptions

    func run() throws {
        let plan = try JobPlanner.plan(job.document())
        printLine("\(plan.file): valid; \(plan.steps.count) step(s): " + plan.steps.map { "\($0.name) (\($0.kind.rawValue))" }.joined(separator: ", ")
                  + "; outputs in \(plan.outputFolder)")
    }
}

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print an annotated job file with every key and its default.")

    func run() throws {
        print(JobSchema.text(), terminator: "")
    }
}

struct SlurmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm",
        abstract: "Run a job's sharded steps on a Slurm cluster: batch scripts, sbatch, status and resubmission.",
        discussion: """
            For each step that runs in shards (groundtruth, knn_graph exact, dedup exact, train), in job order: a job that \
            runs every step before it (and trains the quantizers of a train step), then an array of --shards tasks, each one shard; after the last array, a merge \
            job that merges and runs the rest. Dependent jobs use afterok and --kill-on-invalid-dep=yes, so a failed \
            shard cancels what waits for it. Scripts, job ids and logs go to OUTPUT/slurm/. The result equals \
            `simjob run JOB` on one machine, dataset for dataset.
            """)

    @OptionGroup var job: JobOptions
    @Option(help: "Shards per sharded step (the array size).") var shards: Int
    @Option(help: "Slurm partition (sbatch --partition).") var partition: String?
    @Option(help: "Time limit of each batch job (sbatch --time), e.g. 2:00:00.") var time: String?
    @Option(help: "Memory of each batch job (sbatch --mem), e.g. 16G.") var mem: String?
    @Option(help: "CPUs of each batch job (sbatch --cpus-per-task).") var cpusPerTask: Int?
    @Option(name: .customLong("sbatch-arg"), parsing: .unconditionalSingleValue, help: ArgumentHelp("Another sbatch option for every script (repeatable), e.g. --sbatch-arg=--account=ml.", valueName: "ARG"))
    var sbatchArguments: [String] = []
    @Flag(help: "Print the scripts and the sbatch lines; submit nothing.") var dryRun = false
    @Flag(help: "Show which shards are done, running, pending or failed, and the prepare and merge jobs.") var status = false
    @Flag(help: "Resubmit the shards that are missing or failed, then the jobs after them.") var resume = false
    @Flag(help: "Run every step again: clear the job's state and shards before submitting.") var force = false

    func validate() throws {
        guard shards >= 1, shards <= ShardID.maximumCount else { throw ValidationError("--shards must be between 1 and \(ShardID.maximumCount)") }
        if [dryRun, status, resume].filter({ $0 }).count > 1 { throw ValidationError("--dry-run, --status and --resume exclude each other") }
        if force && (status || resume) { throw ValidationError("--force goes with a new submission, not with --status or --resume") }
        if let cpusPerTask, cpusPerTask < 1 { throw ValidationError("--cpus-per-task must be at least 1") }
    }

    func run() throws {
        let plan = try JobPlanner.plan(job.document())
        var arguments = [job.job]
        for assignment in job.assignments { arguments += ["--set", assignment] }
        for input in job.inputs { arguments += ["--input", input] }
        if let output = job.output { arguments += ["--output", output] }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var options = SlurmRunner.Options(shards: shards, jobArguments: arguments, executable: executable,
                                          workingDirectory: FileManager.default.currentDirectoryPath)
        options.partition = partition
        options.time = time
        options.memory = mem
        options.cpusPerTask = cpusPerTask
        options.sbatchArguments = sbatchArguments
        var slurm = SlurmRunner(plan: plan, options: options)
        slurm.log = { simjobLogger.info("\($0)") }
        if dryRun {
            printLine(try slurm.dryRun())
            return
        }
        if status {
            printLine(try slurm.status().text)
            return
        }
        let submission = resume ? try slurm.resume() : try slurm.submit(force: force)
        let ids = submission.jobs.map(\.id)
        printLine("job \(plan.name): submitted Slurm jobs " + submission.jobs.map { "\($0.id) (\($0.role)\($0.step.map { " \($0)" } ?? ""))" }.joined(separator: ", "))
        printLine("follow: simjob slurm \(arguments.joined(separator: " ")) --shards \(shards) --status; squeue -j \(ids.joined(separator: ",")); logs in \(plan.outputFolder)/slurm/logs")
    }
}
