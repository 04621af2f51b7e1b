import Dispatch
import Foundation
import Logging
import SimjobKernels

/// Lloyd's k-means whose assignment step is the exact engine's blocked sgemm
/// (`||x||^2 - 2 x.c + ||c||^2`, nearest centroid per point, ties to the lower index).
///
/// Determinism: sampling, initialisation and empty-cluster repair draw from seeded generators;
/// the assignment does not depend on threads (see `ExactKNN`); the update sums in Double, in
/// point order, with threads splitting the coordinates rather than the points. So one seed gives
/// bit-identical centroids at any thread count.
public struct KMeans {
    public let config: KMeansConfig
    public var logger: Logger?
    public var progressStyle: ProgressDisplay.Style = .silent
    /// Label shown in progress and logs ("k-means", "coarse quantizer", ...).
    public var label = "k-means"

    public init(config: KMeansConfig, logger: Logger? = nil) {
        self.config = config
        self.logger = logger
    }

    var threadCount: Int { max(1, config.threads ?? ProcessInfo.processInfo.activeProcessorCount) }

    /// Clusters the rows of `points` (`n x d`, already normalised for angular data).
    public func train(_ points: FloatMatrix) throws -> KMeansResult {
        let started = ProgressDisplay.now()
        let n = points.rows
        let k = config.k
        guard k >= 1 else { throw SimjobError("\(label): k must be at least 1 (got \(k))") }
        guard n >= k else {
            throw SimjobError("\(label): \(n) training points are fewer than the k = \(k) centroids")
        }
        guard config.iterations >= 1, config.restarts >= 1 else {
            throw SimjobError("\(label): iterations and restarts must be at least 1")
        }
        let sample = subsample(points)
        let training = ExactKNN.Chunk(vectors: sample, start: 0)

        var best: KMeansResult?
        var objectives: [Double] = []
        for restart in 0..<config.restarts {
            var result = try run(training, seed: config.seed &+ UInt64(restart))
            objectives.append(result.objective)
            if config.restarts > 1 {
                logger?.info("\(label): restart \(restart + 1)/\(config.restarts) objective \(result.objective)")
            }
            if best == nil || result.objective < best!.objective {
                result.sampleSize = sample.rows
                best = result
            }
        }
        best!.restartObjectives = objectives
        best!.seconds = ProgressDisplay.now() - started
        Invariants.checkFinite(best!.centroids, what: "k-means centroids")
        return best!
    }

    /// At most `k * maxPointsPerCentroid` rows, drawn without replacement (kept in row order).
    func subsample(_ points: FloatMatrix) -> FloatMatrix {
        let cap = config.maxPointsPerCentroid > 0 ? config.k * config.maxPointsPerCentroid : Int.max
        guard points.rows > cap else { return points }
        logger?.info("\(label): sampling \(cap) of \(points.rows) training points (k = \(config.k) x max_points_per_centroid = \(config.maxPointsPerCentroid))")
        let chosen = sampleIndices(cap, from: points.rows, seed: config.seed)
        let sample = FloatMatrix(rows: cap, columns: points.columns)
        for (row, source) in chosen.enumerated() {
            sample.row(row).update(from: points.row(source), count: points.columns)
        }
        return sample
    }

    func run(_ training: ExactKNN.Chunk, seed: UInt64) throws -> KMeansResult {
        let n = training.count
        let d = training.vectors.columns
        let k = config.k
        var rng = SeededGenerator(seed: seed, stream: 0xC1)
        let centroids = try initialCentroids(training, rng: &rng)
        let assignments = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        let distances = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer {
            assignments.deallocate()
            distances.deallocate()
        }

        var stats: [KMeansIterationStats] = []
        let progress = ProgressDisplay(label, total: config.iterations, unit: "iterations", style: progressStyle, logger: logger)
        let sums = UnsafeMutablePointer<Double>.allocate(capacity: k * d)
        defer { sums.deallocate() }
        var counts = [Int](repeating: 0, count: k)
        // The points in the assignment's reduced format, encoded once for every iteration (and
        // every restart: the chunk keeps them).
        training.prepare(try NearestCentroid.format(config.gemm, rows: n, k: k, dimension: d), threads: threadCount)
        for iteration in 0..<config.iterations {
            try Cancellation.check()
            let iterationStarted = ProgressDisplay.now()
            // Assignment: the nearest centroid of every point, by sgemm.
            try NearestCentroid(centroids: centroids, gemm: config.gemm).assign(
                training.vectors.pointer, rows: n, lda: d, rowNorms: training.norms,
                indices: assignments, scores: distances, threads: threadCount, encodedRows: training.reduced)
            var objective = 0.0
            for i in 0..<n { objective += Double(distances[i]) }

            // Update: means of the assigned points (Double sums, point order, coordinates split
            // across threads).
            sums.initialize(repeating: 0, count: k * d)
            counts = [Int](repeating: 0, count: k)
            for i in 0..<n { counts[Int(assignments[i])] += 1 }
            let parts = min(threadCount * 2, d)
            let shared = UnsafeSendable((training.vectors.pointer, UnsafePointer(assignments), sums))
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let columns = (part * d / parts)..<((part + 1) * d / parts)
                ClusterKernels.accumulate(
                    points: shared.value.0, count: n, dimension: d, assignments: shared.value.1,
                    columns: columns, sums: shared.value.2)
            }
            for c in 0..<k where counts[c] > 0 {
                let scale = 1.0 / Double(counts[c])
                let row = centroids.row(c)
                for j in 0..<d { row[j] = Float(sums[c * d + j] * scale) }
            }
            let splits = repairEmptyClusters(centroids, counts: &counts, rng: &rng)
            if config.spherical { VectorKernels.normalizeRows(centroids.pointer, rows: k, dimension: d) }

            let squares = counts.reduce(0.0) { $0 + Double($1) * Double($1) }
            stats.append(KMeansIterationStats(
                iteration: iteration, objective: objective,
                imbalance: Double(k) * squares / (Double(n) * Double(n)),
                splits: splits, seconds: ProgressDisplay.now() - iterationStarted))
            progress.advance()
            if config.tolerance > 0, stats.count >= 2 {
                let previous = stats[stats.count - 2].objective
                if previous > 0, (previous - objective) / previous < config.tolerance {
                    logger?.info("\(label): converged after \(iteration + 1) iterations (objective change below \(config.tolerance))")
                    break
                }
            }
        }
        progress.finish()
        return KMeansResult(centroids: centroids, iterations: stats, restartObjectives: [], sampleSize: n, clusterSizes: counts, seconds: 0)
    }

    func initialCentroids(_ training: ExactKNN.Chunk, rng: inout SeededGenerator) throws -> FloatMatrix {
        let n = training.count
        let d = training.vectors.columns
        let k = config.k
        let centroids = FloatMatrix(rows: k, columns: d)
        switch config.initialization {
        case .random:
            // k distinct points: a partial Fisher-Yates shuffle of the indices.
            var order = Array(0..<n)
            for index in 0..<k {
                order.swapAt(index, index + Int(rng.next() % UInt64(n - index)))
                centroids.row(index).update(from: training.vectors.row(order[index]), count: d)
            }
        case .kmeansPlusPlus:
            var nearest = [Float](repeating: .infinity, count: n)
            var chosen = Int(rng.next() % UInt64(n))
            for index in 0..<k {
                try Cancellation.check()
                centroids.row(index).update(from: training.vectors.row(chosen), count: d)
                let centre = UnsafeSendable(centroids.row(index))
                let points = UnsafeSendable(training.vectors.pointer)
                nearest.withUnsafeMutableBufferPointer { buffer in
                    let out = UnsafeSendable(buffer.baseAddress!)
                    let blocks = (n + 4095) / 4096
                    DispatchQueue.concurrentPerform(iterations: blocks) { block in
                        for i in (block * 4096)..<min(n, (block + 1) * 4096) {
                            let distance = VectorKernels.squaredDistance(points.value + i * d, centre.value, count: d)
                            if distance < out.value[i] { out.value[i] = distance }
                        }
                    }
                }
                guard index + 1 < k else { break }
                let total = nearest.reduce(0.0) { $0 + Double($1) }
                if total <= 0 {
                    // Fewer distinct points than centroids: the rest duplicate chosen points and
                    // are repaired as empty clusters.
                    chosen = Int(rng.next() % UInt64(n))
                    continue
                }
                var target = Double(rng.nextUnitFloat()) * total
                chosen = n - 1
                for i in 0..<n {
                    target -= Double(nearest[i])
                    if target < 0 { chosen = i; break }
                }
            }
        }
        return centroids
    }

    /// FAISS's repair (`split_clusters`): an empty cluster takes a copy of a large cluster's
    /// centroid, chosen with probability proportional to its size, and the two are nudged apart
    /// symmetrically by a factor 1 +- 1/1024 per coordinate; the large cluster's count is split.
    func repairEmptyClusters(_ centroids: FloatMatrix, counts: inout [Int], rng: inout SeededGenerator) -> Int {
        let k = counts.count
        let d = centroids.columns
        let n = counts.reduce(0, +)
        let epsilon: Float = 1 / 1024
        var splits = 0
        for empty in 0..<k where counts[empty] == 0 {
            guard n > k else { break }
            var donor = 0
            while true {
                // Probability (size - 1) / (n - k) of picking each cluster.
                let u = Double(rng.nextUnitFloat())
                var cumulative = 0.0
                donor = k - 1
                for c in 0..<k {
                    cumulative += Double(max(counts[c] - 1, 0)) / Double(n - k)
                    if u < cumulative { donor = c; break }
                }
                if counts[donor] > 1 { break }
            }
            let target = centroids.row(empty), source = centroids.row(donor)
            target.update(from: source, count: d)
            for j in 0..<d {
                if j % 2 == 0 {
                    target[j] *= 1 + epsilon
                    source[j] *= 1 - epsilon
                } else {
                    target[j] *= 1 - epsilon
                    source[j] *= 1 + epsilon
                }
            }
            counts[empty] = counts[donor] / 2
            counts[donor] -= counts[empty]
            splits += 1
        }
        return splits
    }
}
