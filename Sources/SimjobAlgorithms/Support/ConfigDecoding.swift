import Foundation
import SimjobKernels

/// A settings struct that job files decode: every key optional (the documented default
/// applies), and the list of keys known, so unknown ones can be reported.
public protocol JobSettings: Codable, Sendable {
    associatedtype CodingKeys: CodingKey & CaseIterable
    /// The keys a job file may use for these settings.
    static var jobKeys: [String] { get }
}

extension JobSettings {
    public static var jobKeys: [String] { CodingKeys.allCases.map(\.stringValue) }
}

extension KeyedDecodingContainer {
    /// The value under `key`, or `fallback` when the key is absent.
    func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }

    /// A list written as one value or as a sequence (`nprobe: 16` or `nprobe: [1, 4, 16]`).
    func list<T: Decodable>(_ key: Key, or fallback: [T]) throws -> [T] {
        guard contains(key) else { return fallback }
        if let single = try? decode(T.self, forKey: key) { return [single] }
        return try decode([T].self, forKey: key)
    }

    /// A byte count written as a number of bytes or with a unit (`512M`, `4G`).
    func bytes(_ key: Key) throws -> Int? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        if let number = try? decode(Int.self, forKey: key) { return number }
        let text = try decode(String.self, forKey: key)
        guard let bytes = parseByteCount(text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "'\(text)' is not a size such as 512M or 4G")
        }
        return bytes
    }
}

extension ExactKNNConfig: JobSettings {
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        k = try c.value(.k, or: k)
        metric = try c.decodeIfPresent(Metric.self, forKey: .metric)
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
        block = try c.value(.block, or: block)
        symmetric = try c.value(.symmetric, or: symmetric)
        memoryLimit = try c.bytes(.memoryLimit)
    }
}

extension SyntheticConfig: JobSettings {
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        n = try c.value(.n, or: n)
        queries = try c.value(.queries, or: queries)
        dim = try c.value(.dim, or: dim)
        metric = try c.value(.metric, or: metric)
        clusters = try c.value(.clusters, or: clusters)
        latentDim = try c.value(.latentDim, or: latentDim)
        duplicates = try c.value(.duplicates, or: duplicates)
        groundTruthK = try c.value(.groundTruthK, or: groundTruthK)
        seed = try c.value(.seed, or: seed)
    }
}

extension KMeansConfig: JobSettings {
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        k = try c.value(.k, or: k)
        iterations = try c.value(.iterations, or: iterations)
        initialization = try c.value(.initialization, or: initialization)
        maxPointsPerCentroid = try c.value(.maxPointsPerCentroid, or: maxPointsPerCentroid)
        spherical = try c.value(.spherical, or: spherical)
        restarts = try c.value(.restarts, or: restarts)
        tolerance = try c.value(.tolerance, or: tolerance)
        seed = try c.value(.seed, or: seed)
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
    }
}

extension IVFPQConfig: JobSettings {
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        nlist = try c.value(.nlist, or: nlist)
        m = try c.value(.m, or: m)
        nbits = try c.value(.nbits, or: nbits)
        metric = try c.decodeIfPresent(Metric.self, forKey: .metric)
        coarseIterations = try c.value(.coarseIterations, or: coarseIterations)
        pqIterations = try c.value(.pqIterations, or: pqIterations)
        maxPointsPerCentroid = try c.value(.maxPointsPerCentroid, or: maxPointsPerCentroid)
        seed = try c.value(.seed, or: seed)
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
        memoryLimit = try c.bytes(.memoryLimit)
    }
}

extension IVFPQSearchConfig: JobSettings {
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        k = try c.value(.k, or: k)
        nprobe = try c.value(.nprobe, or: nprobe)
        refine = try c.value(.refine, or: refine)
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
    }
}

extension EvaluationConfig: JobSettings {
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        k = try c.value(.k, or: k)
        nprobe = try c.list(.nprobe, or: nprobe)
        refine = try c.list(.refine, or: refine)
        runs = try c.value(.runs, or: runs)
        latencyQueries = try c.value(.latencyQueries, or: latencyQueries)
        includeExact = try c.value(.includeExact, or: includeExact)
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
    }
}

extension DedupConfig: JobSettings {
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        thresholds = try c.list(.thresholds, or: thresholds)
        metric = try c.decodeIfPresent(Metric.self, forKey: .metric)
        mode = try c.value(.mode, or: mode)
        keep = try c.value(.keep, or: keep)
        partitions = try c.value(.partitions, or: partitions)
        recallSample = try c.value(.recallSample, or: recallSample)
        maxPairs = try c.value(.maxPairs, or: maxPairs)
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
        seed = try c.value(.seed, or: seed)
    }
}
