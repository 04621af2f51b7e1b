import Dispatch
import Foundation
import SimjobKernels

/// Settings of `simjob generate`: a clustered synthetic set in the ann-benchmarks layout.
public struct SyntheticConfig: Codable, Sendable, Equatable {
    /// Rows of `train`. Default 10,000.
    public var n: Int = 10_000
    /// Rows of `test` (queries). Default 1,000.
    public var queries: Int = 1_000
    /// Dimension. Default 128.
    public var dim: Int = 128
    /// The `distance` attribute written to the file. Default euclidean.
    public var metric: Metric = .euclidean
    /// Gaussian clusters in the mixture. Default 64.
    public var clusters: Int = 64
    /// When above 0, each cluster varies mostly within a random subspace of this dimension
    /// (plus isotropic noise of a tenth of its spread), as real embeddings have a low intrinsic
    /// dimension; 0 gives isotropic Gaussian clusters. Default 0.
    public var latentDim: Int = 0
    /// When above 0, each cluster is an anisotropic Gaussian in the full dimension: its own
    /// random directions, the l-th with standard deviation proportional to
    /// `(1 + l)^(-anisotropy / 2)` (scaled to unit variance per coordinate on average). With
    /// about 1,000 clusters this is the hard synthetic case: no low-dimensional shortcut for
    /// cell-based methods, neighbours spread over overlapping components (centres are drawn 0.3
    /// times as far apart as for isotropic clusters). Excludes
    /// `latent_dim`. Default 0.
    public var anisotropy: Double = 0
    /// Fraction of `train` rows that are planted near-duplicates of another row (0 to 0.5),
    /// recorded in `dup_group`. Default 0.
    public var duplicates: Double = 0
    /// Ground-truth neighbours per query written to `neighbors`/`distances`; 0 writes none.
    /// Default 100, as ann-benchmarks' datasets have. Capped at n.
    public var groundTruthK: Int = 100
    /// Seed of every random draw: the same seed gives the same file at any thread count.
    public var seed: UInt64 = 1

    public init() {}

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case n, queries, dim, metric, clusters, latentDim = "latent_dim", anisotropy, duplicates, groundTruthK = "k", seed
    }
}

/// A Gaussian mixture: cluster centres from N(0, 1) per coordinate, each cluster with its own
/// spread (0.15 to 0.6 per coordinate, log-uniform) and weight (0.5 to 1.5, normalised).
/// Queries come from the same mixture. Planted near-duplicates copy another train row and add
/// noise of 1 % of that row's cluster spread, so they sit far closer to their source than any
/// natural neighbour.
///
/// Every row is drawn from its own generator (seed, stream = row), so any row can be
/// regenerated on its own and blocks are built in parallel with identical results.
public struct SyntheticDataset: Sendable {
    public let config: SyntheticConfig
    let centers: [Float]
    let spreads: [Float]
    /// Per cluster, `latentDim x dim` Gaussian directions (empty when isotropic).
    let bases: [Float]
    /// Standard deviation along each of a cluster's directions (anisotropic clusters only).
    let directionScales: [Float]
    /// Directions per cluster: `latentDim`, or the dimension for anisotropic clusters.
    var directions: Int { Self.directions(config) }
    static func directions(_ config: SyntheticConfig) -> Int { config.anisotropy > 0 ? config.dim : config.latentDim }
    let cumulativeWeights: [Double]
    /// For each train row, the row it duplicates, or -1.
    public let sourceOf: [Int32]
    /// For each train row, its planted duplicate group, or -1.
    public let duplicateGroup: [Int32]
    public let groupCount: Int

    /// Scale of the centres of anisotropic components (isotropic ones: 1).
    static let anisotropicCentreScale: Float = 0.3

    /// Relative noise of a planted near-duplicate (to its cluster's spread).
    public static let duplicateNoise: Float = 0.01

    public init(_ config: SyntheticConfig) throws {
        guard config.n >= 1 else { throw SimjobError("generate: --n must be at least 1") }
        guard config.queries >= 0 else { throw SimjobError("generate: --queries must not be negative") }
        guard config.dim >= 1 else { throw SimjobError("generate: --dim must be at least 1") }
        guard config.clusters >= 1 else { throw SimjobError("generate: --clusters must be at least 1") }
        guard config.latentDim >= 0, config.latentDim <= config.dim else {
            throw SimjobError("generate: --latent-dim must be between 0 and the dimension \(config.dim)")
        }
        guard config.anisotropy >= 0, config.anisotropy.isFinite else { throw SimjobError("generate: --anisotropy must be at least 0") }
        guard config.anisotropy == 0 || config.latentDim == 0 else {
            throw SimjobError("generate: --anisotropy and --latent-dim exclude each other (anisotropic clusters span the full dimension)")
        }
        guard config.groundTruthK >= 0 else { throw SimjobError("generate: --k must not be negative") }
        guard (0...0.5).contains(config.duplicates) else {
            throw SimjobError("generate: --duplicates must be a fraction between 0 and 0.5 (got \(config.duplicates))")
        }
        self.config = config
        var rng = SeededGenerator(seed: config.seed, stream: .max)
        var centers = [Float](repeating: 0, count: config.clusters * config.dim)
        centers.withUnsafeMutableBufferPointer { rng.fillGaussian($0.baseAddress!, count: $0.count) }
        if config.anisotropy > 0 {
            // Anisotropic components overlap: centres 0.3 times as far apart as isotropic ones.
            for index in centers.indices { centers[index] *= Self.anisotropicCentreScale }
        }
        self.centers = centers
        spreads = (0..<config.clusters).map { _ in 0.15 * Float(pow(4.0, Double(rng.nextUnitFloat()))) }
        var bases = [Float](repeating: 0, count: config.clusters * Self.directions(config) * config.dim)
        bases.withUnsafeMutableBufferPointer { rng.fillGaussian($0.baseAddress!, count: $0.count) }
        self.bases = bases
        if config.anisotropy > 0 {
            let raw = (0..<config.dim).map { pow(1 + Double($0), -config.anisotropy / 2) }
            let norm = (raw.reduce(0) { $0 + $1 * $1 } / Double(config.dim)).squareRoot()
            directionScales = raw.map { Float($0 / norm) }
        } else {
            directionScales = []
        }
        let weights = (0..<config.clusters).map { _ in 0.5 + Double(rng.nextUnitFloat()) }
        let total = weights.reduce(0, +)
        var running = 0.0
        cumulativeWeights = weights.map { running += $0 / total; return running }

        // Planted groups: walk a seeded permutation, taking a source and 1 to 3 copies at a time.
        var sourceOf = [Int32](repeating: -1, count: config.n)
        var group = [Int32](repeating: -1, count: config.n)
        var groups = 0
        let wanted = Int((config.duplicates * Double(config.n)).rounded())
        if wanted > 0 {
            var order = (0..<Int32(config.n)).map { $0 }
            for index in stride(from: order.count - 1, to: 0, by: -1) {
                order.swapAt(index, Int(rng.next() % UInt64(index + 1)))
            }
            var position = 0
            var planted = 0
            while planted < wanted && position + 1 < order.count {
                let source = order[position]
                let copies = min(1 + Int(rng.next() % 3), wanted - planted, order.count - position - 1)
                group[Int(source)] = Int32(groups)
                for offset in 1...copies {
                    let copy = Int(order[position + offset])
                    sourceOf[copy] = source
                    group[copy] = Int32(groups)
                }
                groups += 1
                planted += copies
                position += copies + 1
            }
        }
        self.sourceOf = sourceOf
        duplicateGroup = group
        groupCount = groups
    }

    /// Calls `body(row, out)` for every row of `range` in parallel, `out` pointing at the row's
    /// place in `buffer`.
    func forEachRow(_ range: Range<Int>, in buffer: UnsafeMutablePointer<Float>, _ body: @Sendable (Int, UnsafeMutablePointer<Float>) -> Void) {
        let rows = UnsafeSendable(buffer)
        let d = config.dim
        DispatchQueue.concurrentPerform(iterations: (range.count + 255) / 256) { part in
            let start = range.lowerBound + part * 256
            for row in start..<min(start + 256, range.upperBound) {
                body(row, rows.value + (row - range.lowerBound) * d)
            }
        }
    }

    /// Train rows `range` into `buffer`.
    public func trainRows(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        let d = config.dim
        forEachRow(range, in: buffer) { row, out in
            let source = Int(sourceOf[row])
            guard source >= 0 else {
                drawRow(stream: UInt64(row), into: out)
                return
            }
            let cluster = drawRow(stream: UInt64(source), into: out)
            var rng = SeededGenerator(seed: config.seed ^ 0x5EED_D0D0, stream: UInt64(row))
            let noise = UnsafeMutablePointer<Float>.allocate(capacity: d)
            defer { noise.deallocate() }
            rng.fillGaussian(noise, count: d)
            let scale = SyntheticDataset.duplicateNoise * spreads[cluster]
            for j in 0..<d { out[j] += scale * noise[j] }
        }
    }

    /// Query rows `range` into `buffer` (streams apart from train's).
    public func queryRows(_ range: Range<Int>, into buffer: UnsafeMutablePointer<Float>) {
        forEachRow(range, in: buffer) { row, out in drawRow(stream: (1 << 40) + UInt64(row), into: out) }
    }

    /// One mixture draw; returns its cluster.
    @discardableResult
    func drawRow(stream: UInt64, into out: UnsafeMutablePointer<Float>) -> Int {
        var rng = SeededGenerator(seed: config.seed, stream: stream)
        let u = Double(rng.nextUnitFloat())
        var cluster = 0
        while cluster < cumulativeWeights.count - 1 && cumulativeWeights[cluster] < u { cluster += 1 }
        rng.fillGaussian(out, count: config.dim)
        let spread = spreads[cluster]
        let center = cluster * config.dim
        let latent = directions
        if latent > 0 {
            // x = c + spread * (z B / sqrt(latent) + 0.1 e): unit variance per coordinate
            // from the subspace, a tenth of it from the noise.
            var z = [Float](repeating: 0, count: latent)
            z.withUnsafeMutableBufferPointer { rng.fillGaussian($0.baseAddress!, count: latent) }
            let scale = 1 / Float(latent).squareRoot()
            for j in 0..<config.dim { out[j] *= 0.1 }
            let basis = cluster * latent * config.dim
            for l in 0..<latent {
                let weight = z[l] * scale * (directionScales.isEmpty ? 1 : directionScales[l])
                let direction = basis + l * config.dim
                for j in 0..<config.dim { out[j] += weight * bases[direction + j] }
            }
        }
        for j in 0..<config.dim { out[j] = centers[center + j] + spread * out[j] }
        return cluster
    }
}
