import ArgumentParser
import Logging
import Foundation
import SimjobAlgorithms
import SimjobOperations
import SimjobBLAS
import SimjobHDF5
import SimjobJobs
import SimjobKernels

public struct SimjobCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "simjob",
        abstract: "A CPU batch engine for vector similarity work on HDF5 embedding sets.",
        discussion: """
            Inputs are ann-benchmarks datasets (train, test, neighbors, distances, root attribute \
            'distance'). FILE:DATASET picks a dataset inside a file. Outputs appear under their \
            final name only when complete.
            """,
        subcommands: [
            InfoCommand.self, GenerateCommand.self, GroundTruthCommand.self, KNNGraphCommand.self, KMeansCommand.self,
            TrainCommand.self, SearchCommand.self, EvaluateCommand.self, DedupCommand.self, RunCommand.self,
            SlurmCommand.self, ValidateCommand.self, SchemaCommand.self, ExportCommand.self, ImportCommand.self, VerifyCommand.self,
        ]
    )
    public init() {}

    /// Parses and runs a command. simjob's own errors print as one `error:` line on stderr and
    /// exit with status 1 (130 after Ctrl-C); argument errors keep the parser's usage message.
    public static func runMain(_ arguments: [String]? = nil) -> Never {
        Cancellation.removeTemporaryFiles = { PartialFiles.removeAllNow() }
        AtomicOutputFile.cancellationCheck = { try Cancellation.check() }
        Cancellation.installSignalHandlers()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let given = arguments ?? Array(CommandLine.arguments.dropFirst())
        if given.first == "help", given.count > 1, !given[1].hasPrefix("-"),
           !configuration.subcommands.contains(where: { $0.configuration.commandName == given[1] }) {
            let names = configuration.subcommands.compactMap { $0.configuration.commandName }
            FileHandle.standardError.write(Data("error: no command '\(given[1])'; the commands are \(names.joined(separator: ", "))\n".utf8))
            Foundation.exit(64)
        }
        let prepared: [String]
        do {
            prepared = try ArgumentBounds.prepare(given, command: commandName(in: given))
        } catch let error as SimjobError {
            let command = commandName(in: given)
            FileHandle.standardError.write(Data("error: \(error.message) (see 'simjob help\(command.isEmpty ? "" : " " + command)')\n".utf8))
            Foundation.exit(64)
        } catch {
            Foundation.exit(1)
        }
        do {
            var command = try parseAsRoot(prepared)
            try command.run()
            Foundation.exit(0)
        } catch let error as SimjobError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            switch error.kind {
            case .failure: Foundation.exit(1)
            case .usage: Foundation.exit(64)
            case .cancelled: Foundation.exit(Cancellation.exitStatus)
            }
        } catch let error as JobValidationError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            Foundation.exit(1)
        } catch {
            // --help and --version exit through the parser as usual; argument errors become one
            // line like every other error (the usage is one `simjob help COMMAND` away).
            let code = exitCode(for: error)
            guard code != .success else { exit(withError: error) }
            var message = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            message += allowedValues(after: message)
            let command = commandName(in: arguments)
            FileHandle.standardError.write(Data("error: \(message) (see 'simjob help\(command.isEmpty ? "" : " " + command)')\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }
}

/// For "The value 'x' is invalid for '--option <option>'": what the option accepts.
private func allowedValues(after message: String) -> String {
    guard message.contains("is invalid for '--"), let start = message.range(of: "for '--") else { return "" }
    let option = message[start.upperBound...].prefix { $0 != " " && $0 != "'" }
    let choices: [String: [String]] = [
        "metric": Metric.allValueStrings, "method": KNNGraphCommand.Method.allCases.map(\.rawValue),
        "mode": DedupConfig.Mode.allCases.map(\.rawValue), "keep": DedupConfig.Keep.allCases.map(\.rawValue),
        "initialization": KMeansConfig.Initialization.allCases.map(\.rawValue),
    ]
    if let values = choices[String(option)], !message.contains("Please provide one of") { return " (expected one of: \(values.joined(separator: ", ")))" }
    if option == "memory-limit" { return " (expected a size such as 512M, 8G or 1T)" }
    if message.contains("<") && ["nprobe", "refine", "threshold"].contains(String(option)) { return " (expected comma-separated numbers such as 1,4,16)" }
    return ""
}

/// The subcommand named in the arguments, for pointing at its help.
private func commandName(in arguments: [String]?) -> String {
    let words = arguments ?? Array(CommandLine.arguments.dropFirst())
    let names = SimjobCommand.configuration.subcommands.compactMap { $0.configuration.commandName }
    return words.first { names.contains($0) } ?? ""
}

extension Metric: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { Metric.allCases.map(\.rawValue) }
}

/// `--gemm` on every command with an exact product.
extension GEMMChoice: ExpressibleByArgument {}

/// Options most commands share.
struct CommonOptions: ParsableArguments {
    @Option(help: ArgumentHelp(ParameterHelp.help("threads")))
    var threads: Int?

    @Flag(help: "No progress display.")
    var quiet = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    var progressStyle: ProgressDisplay.Style { quiet ? .silent : .automatic }

    /// Log lines on stderr, unless --quiet.
    var logger: Logger? { quiet ? nil : simjobLogger }

    /// Logs a warning (a log line, never part of an error's line) when OpenBLAS runs slower
    /// kernels than this CPU supports.
    func warnAboutBLAS() {
        if let warning = BLASRuntime.slowKernelWarning { logger?.warning("\(warning)") }
    }
}

/// Comma-separated values: `1,4,16` or `0.02,0.05,0.1`.
struct CommaSeparated<Value: LosslessStringConvertible>: ExpressibleByArgument {
    var values: [Value]
    init(values: [Value]) { self.values = values }
    var defaultValueDescription: String { values.map(\.description).joined(separator: ",") }
    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false).map { Value(String($0).trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        values = parts.map { $0! }
    }
}

/// Parses `--memory-limit` values such as 512M or 4G.
extension ByteCount: ExpressibleByArgument {
    public init?(argument: String) { self.init(text: argument) }
}

func printLine(_ text: String) {
    print(text)
    fflush(nil)
}
