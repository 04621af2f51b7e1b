import ArgumentParser
import Foundation
import SimjobAlgorithms
import SimjobOperations

extension ExportOperations.Format: ExpressibleByArgument {}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an index in another tool's own format: faiss (faiss.read_index loads IVF-PQ and IVF-Flat), hnswlib (HNSW) or annoy (RP-trees).")

    @Argument(help: "Index file written by simjob train or simjob import.") var index: String
    @Option(help: "faiss (IndexIVFPQ or IndexIVFFlat; angular behind an L2 normalization), hnswlib or annoy (AnnoyIndex(d, metric).load; euclidean and angular forests with the default leaf size).") var format: ExportOperations.Format
    @Option(help: "Output file.") var output: String

    func run() throws {
        let exported = try ExportOperations.export(index: index, format: format, output: output)
        printLine("export: \(exported.type) index of \(exported.vectors) vectors as \(format.rawValue), \(formatBytes(exported.bytes)) -> \(output)")
    }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Read a FAISS index file (IndexIVFPQ or IndexIVFFlat, optionally behind an L2 normalization) into a simjob index.")

    @Argument(help: "FAISS index file (faiss.write_index).") var file: String
    @Option(help: "Output index file.") var output: String
    @Option(help: "FILE[:DATASET] of the vectors the index holds (for search --refine, and its provenance for verify; default: none recorded).") var source: String?
    @OptionGroup var tagging: TagOptions

    func run() throws {
        let index = try tagging.applying {
            try ExportOperations.importFAISS(file, output: output, source: source.map { DatasetReference(parsing: $0, defaultDataset: "train") })
        }
        printLine("import: \(index.summary) \(index.metric.rawValue), \(index.count) vectors -> \(output)")
    }
}

/// `--tag KEY=VALUE` on the commands that build artifacts: recorded in the artifact's provenance
/// beside the input file's own tags.
struct TagOptions: ParsableArguments {
    @Option(name: .customLong("tag"), help: ArgumentHelp("KEY=VALUE recorded in the output's provenance (repeatable), beside the input file's own text attributes: e.g. model=minilm-v2@2026-11-30.", valueName: "KEY=VALUE"))
    var tags: [String] = []

    /// Runs `body` with these tags applied to every artifact it stamps.
    func applying<T>(_ body: () throws -> T) throws -> T {
        try Provenance.$userTags.withValue(Provenance.parseTags(tags), operation: body)
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that an artifact (index, k-NN graph, dedup result) was built from these vectors and carries the required tags; exits 1 on any mismatch.")

    @Argument(help: "An index, k-NN graph or dedup output written by simjob.") var artifact: String
    @Option(help: "FILE[:DATASET] of the vectors it must have been built from (default dataset: train).") var against: String
    @Option(name: .customLong("require"), help: ArgumentHelp("KEY=VALUE the artifact's tags must hold (repeatable).", valueName: "KEY=VALUE"))
    var required: [String] = []
    @OptionGroup var common: CommonOptions

    func run() throws {
        let report = try VerifyOperation.run(artifact: artifact, against: DatasetReference(parsing: against, defaultDataset: "train"),
                                             required: Provenance.parseTags(required, what: "--require"), threads: common.threads)
        printLine(report.table)
        guard report.passed else { throw SimjobError(report.failureMessage) }
        printLine("verify: \(artifact) matches \(report.against)")
    }
}
