import ArgumentParser
import Foundation
import SimjobAlgorithms
import SimjobOperations

extension ExportOperations.Format: ExpressibleByArgument {}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write an index in another tool's own format: faiss (faiss.read_index loads it).")

    @Argument(help: "Index file written by simjob train or simjob import.") var index: String
    @Option(help: "faiss (IVF-PQ: IndexIVFPQ, angular behind an L2 normalization) or hnswlib.") var format: ExportOperations.Format
    @Option(help: "Output file.") var output: String

    func run() throws {
        let exported = try ExportOperations.export(index: index, format: format, output: output)
        printLine("export: \(exported.type) index of \(exported.vectors) vectors as \(format.rawValue), \(formatBytes(exported.bytes)) -> \(output)")
    }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Read a FAISS index file (IndexIVFPQ, optionally behind an L2 normalization) into a simjob index.")

    @Argument(help: "FAISS index file (faiss.write_index).") var file: String
    @Option(help: "Output index file.") var output: String
    @Option(help: "FILE[:DATASET] of the vectors the index holds (for search --refine; default: none recorded).") var source: String?

    func run() throws {
        let index = try ExportOperations.importFAISS(file, output: output, source: source.map { DatasetReference(parsing: $0, defaultDataset: "train") })
        printLine("import: IVF-PQ nlist=\(index.nlist) m=\(index.pq.m) nbits=\(index.pq.nbits) \(index.metric.rawValue), \(index.count) vectors -> \(output)")
    }
}
