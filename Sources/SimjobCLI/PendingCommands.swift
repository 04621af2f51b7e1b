import ArgumentParser
import SimjobAlgorithms

/// Commands of the interface whose engines are not built yet. Each exists so the command list
/// is complete, and refuses to run with a clear message rather than pretending.
protocol PendingCommand: ParsableCommand {}

extension PendingCommand {
    func run() throws {
        throw SimjobError("'simjob \(Self.configuration.commandName ?? "")' is not available in this version yet")
    }
}

struct RunCommand: PendingCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run a YAML job file (not available yet).")
    @Argument(parsing: .allUnrecognized) var arguments: [String] = []
}
