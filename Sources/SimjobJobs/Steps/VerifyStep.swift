import Foundation
import SimjobAlgorithms
import SimjobHDF5
import SimjobOperations
import Yams

/// `verify`: fails the job when an artifact was not built from the given vectors or lacks the
/// required tags (simjob verify), so a skewed index stops the pipeline before it ships.
enum VerifyStep: StepDefinition {
    static let ownKeys: [(key: String, help: String, example: String)] = [
        ("artifact", "an index, k-NN graph or dedup output: a step or a path", "index"),
        ("input", "the vectors it must have been built from: a step, a named input or a path", "data"),
        ("dataset", "dataset inside the input", "train"),
        ("require", "tags the artifact must carry, KEY: VALUE", "{model: minilm-v2}"),
    ]
    static let settingsKeys: [String] = []
    static let summary = "check an artifact against the vectors and tags it must come from (simjob verify)"
    static var defaultSettings: Encodable { [String: String]() }

    struct Action: StepAction {
        var artifact: String
        var against: DatasetReference
        var required: [String: String]
        var threads: Int?
        var settingsDescription: String { artifact + against.description + canonicalJSON(required) }

        func run(_ step: PlannedStep, runner: JobRunner) throws -> String {
            let report = try VerifyOperation.run(artifact: artifact, against: against, required: required, threads: threads)
            if runner.progressStyle != .silent { FileHandle.standardError.write(Data((report.table + "\n").utf8)) }
            guard report.passed else { throw SimjobError(report.failureMessage) }
            let out = try AtomicOutputFile(step.output)
            try out.file.createGroup("verify")
            try out.file.setAttribute("passed", .int(1), on: "verify")
            try out.file.setAttribute("artifact", .string(artifact), on: "verify")
            try out.file.setAttribute("against", .string(against.description), on: "verify")
            try out.file.setAttribute("checks", .strings(report.table.split(separator: "\n").map(String.init)), on: "verify")
            try out.commit()
            return "\(artifact) matches \(against) (\(report.checks.filter { $0.passed == true }.count) checks)"
        }
    }

    static func plan(_ planning: inout StepPlanning) -> (any StepAction)? {
        let artifact = planning.reference("artifact"), input = planning.reference("input")
        var required: [String: String] = [:]
        if let node = planning.options["require"], node.null == nil {
            if let mapping = node.mapping {
                for (key, value) in mapping {
                    guard let name = key.string, let text = value.string ?? value.scalar?.string else {
                        planning.problem(planning.keyNode("require"), "\(planning.label).require", "every entry must be KEY: VALUE text")
                        continue
                    }
                    do { _ = try Provenance.parseTag("\(name)=\(text)", what: "require") } catch let error as SimjobError {
                        planning.problem(planning.keyNode("require"), "\(planning.label).require", error.message)
                    } catch {}
                    required[name] = text
                }
            } else {
                planning.problem(planning.keyNode("require"), "\(planning.label).require", "must be a mapping of KEY: VALUE")
            }
        }
        guard let artifact, let input else { return nil }
        let against = planning.datasetReference(input, dataset: planning.datasetName(default: "train"), key: "input")
        return Action(artifact: artifact.path, against: against, required: required, threads: planning.jobThreads)
    }
}
