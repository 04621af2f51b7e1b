import Foundation
import SimjobKernels

/// A settings struct that job files decode.
///
/// Decoding is the struct's synthesized `Codable`: a job's keys are laid over the encoded
/// defaults (`jobDefaults`) before decoding, so an absent key takes the documented default and
/// no struct carries a hand-written decoder. A field added to a struct is a job key at once.
public protocol JobSettings: Codable, Sendable, Equatable {
    associatedtype CodingKeys: CodingKey & CaseIterable
    /// The settings with every documented default.
    static var jobDefaults: Self { get }
    /// The keys a job file may use for these settings.
    static var jobKeys: [String] { get }
}

extension JobSettings {
    public static var jobKeys: [String] { CodingKeys.allCases.map(\.stringValue) }
}

extension ExactKNNConfig: JobSettings { public static var jobDefaults: Self { Self() } }
extension SyntheticConfig: JobSettings { public static var jobDefaults: Self { Self() } }
extension KMeansConfig: JobSettings { public static var jobDefaults: Self { Self() } }
extension IVFPQConfig: JobSettings { public static var jobDefaults: Self { Self() } }
extension IVFPQSearchConfig: JobSettings { public static var jobDefaults: Self { Self() } }
extension EvaluationConfig: JobSettings { public static var jobDefaults: Self { Self() } }
extension DedupConfig: JobSettings { public static var jobDefaults: Self { Self() } }
extension ApproxKNNConfig: JobSettings { public static var jobDefaults: Self { Self() } }
