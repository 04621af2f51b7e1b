/// A distance between vectors. Every metric is arranged so that smaller is closer, and the
/// values written to files follow ann-benchmarks:
/// - `euclidean`: plain L2, `||x - y||` (not squared);
/// - `angular`: `1 - cos(x, y)`, computed on vectors normalised once up front;
/// - `ip` (inner product): `-x.y`, so the largest inner product is the nearest.
///
/// Zero vectors under `angular`: a zero vector has no direction; simjob leaves it zero after
/// normalisation, so its cosine with every vector is 0 and its distance to everything is 1.
public enum Metric: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    case euclidean
    case angular
    case ip

    public var description: String { rawValue }

    /// Parses a metric name as written on the command line or in an ann-benchmarks file's
    /// `distance` attribute (which spells inner product in several ways).
    /// Job files spell a metric as the command line does (`cosine` is `angular`, ...).
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let metric = Metric(name: text) else {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: decoder.codingPath, debugDescription: "Cannot initialize Metric from invalid String value \(text)"))
        }
        self = metric
    }

    public init?(name: String) {
        switch name.lowercased() {
        case "euclidean", "l2": self = .euclidean
        case "angular", "cosine": self = .angular
        case "ip", "dot", "inner_product", "innerproduct", "mips": self = .ip
        default: return nil
        }
    }

    /// Whether vectors are normalised to unit length before any distance is computed.
    public var normalizesVectors: Bool { self == .angular }

    /// Scores are what the engine ranks by: squared L2 for `euclidean`, `1 - cos` for
    /// `angular` (on unit vectors), `-x.y` for `ip`. `reportedDistance` turns one into the
    /// distance written to files.
    ///
    /// Blocks of scores come from one GEMM through the expansion
    ///
    ///     score(x, y) = normWeight * (||x||^2 + ||y||^2) + constant + dotFactor * (x . y)
    ///
    /// which for euclidean is `||x||^2 + ||y||^2 - 2 x.y`, for angular `1 - x.y`, for ip `-x.y`.
    /// The expansion loses precision by cancellation (identical vectors come out at +-1e-6
    /// instead of 0), so it only pre-selects candidates; `exactScore` decides.
    public var normWeight: Float { self == .euclidean ? 1 : 0 }
    public var constant: Float { self == .angular ? 1 : 0 }
    public var dotFactor: Float { self == .euclidean ? -2 : -1 }

    /// The score of one pair computed directly from the vectors, with no cancellation:
    /// identical vectors score exactly 0 under euclidean and angular, so exact duplicates tie
    /// at 0 and the tie is broken by id.
    @inlinable
    public func exactScore(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, dimension: Int) -> Float {
        switch self {
        case .euclidean:
            return VectorKernels.squaredDistance(x, y, count: dimension)
        case .angular:
            // For unit vectors 1 - x.y = ||x - y||^2 / 2. A zero vector has no direction:
            // its cosine with everything is taken as 0, so its distance is 1.
            let (squaredDistance, xNorm, yNorm) = VectorKernels.squaredDistanceAndNorms(x, y, count: dimension)
            return xNorm == 0 || yNorm == 0 ? 1 : 0.5 * squaredDistance
        case .ip:
            return -VectorKernels.dot(x, y, count: dimension)
        }
    }

    /// The score of two vectors already prepared for the metric (unit length for angular):
    /// squared L2, `1 - cos = ||x - y||^2 / 2`, or `-dot`. The indexes that store prepared
    /// vectors (IVF-Flat, HNSW) compare with it.
    @inlinable
    public func preparedScore(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, dimension: Int) -> Float {
        switch self {
        case .euclidean: return VectorKernels.squaredDistance(x, y, count: dimension)
        case .angular: return 0.5 * VectorKernels.squaredDistance(x, y, count: dimension)
        case .ip: return -VectorKernels.dot(x, y, count: dimension)
        }
    }

    /// Converts an internal score into the distance that is reported and written to files.
    @inlinable
    public func reportedDistance(fromScore score: Float) -> Float {
        switch self {
        case .euclidean: return score.squareRoot()
        case .angular, .ip: return score
        }
    }
}
