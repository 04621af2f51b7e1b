import Foundation
import SimjobAlgorithms
import SimjobOperations
import SimjobKernels

/// The kinds of step a job can run: the commands, with the same options. Each is defined in its
/// own file under `Steps/`; a new kind is a case here and its line in `definition`.
public enum StepKind: String, CaseIterable, Sendable {
    case generate
    case groundtruth
    case knnGraph = "knn_graph"
    case train
    case search
    case evaluate
    case dedup
    case verify

    /// The definition of the kind: keys, defaults, planning and running (`Steps/`).
    var definition: any StepDefinition.Type {
        switch self {
        case .generate: return GenerateStep.self
        case .groundtruth: return GroundTruthStep.self
        case .knnGraph: return KNNGraphStep.self
        case .train: return TrainStep.self
        case .search: return SearchStep.self
        case .evaluate: return EvaluateStep.self
        case .dedup: return DedupStep.self
        case .verify: return VerifyStep.self
        }
    }

    /// Keys of the step itself (which files it works on), besides its settings struct's keys.
    var ownKeys: [(key: String, help: String, example: String)] { definition.ownKeys }

    /// The settings struct's keys.
    var settingsKeys: [String] { definition.settingsKeys }

    var allKeys: [String] { ownKeys.map(\.key) + settingsKeys }

    /// What the step does, for `simjob schema`.
    var summary: String { definition.summary }

    /// Default settings, encoded, for `simjob schema`.
    var defaultSettings: Encodable { definition.defaultSettings }
}
