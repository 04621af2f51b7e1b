import Foundation
import Testing
@testable import SimjobAlgorithms
@testable import SimjobOperations
import SimjobKernels

/// Seeded mixture data: `clusters` centres, `perCluster` points each with spread 0.3.
func mixture(clusters: Int, perCluster: Int, dimension: Int, seed: UInt64) -> FloatMatrix {
    var rng = SeededGenerator(seed: seed)
    let centres = FloatMatrix(rows: clusters, columns: dimension)
    rng.fillGaussian(centres.pointer, count: clusters * dimension)
    let data = FloatMatrix(rows: clusters * perCluster, columns: dimension)
    rng.fillGaussian(data.pointer, count: data.rows * dimension)
    for row in 0..<data.rows {
        let centre = centres.row(row % clusters)
        for j in 0..<dimension { data.row(row)[j] = centre[j] * 3 + 0.3 * data.row(row)[j] }
    }
    return data
}

@Suite("k-means")
struct KMeansTests {
    func kmeans(k: Int, iterations: Int = 15, threads: Int = 2, seed: UInt64 = 1234, initialization: KMeansConfig.Initialization = .random) -> KMeans {
        var config = KMeansConfig(k: k)
        config.iterations = iterations
        config.threads = threads
        config.seed = seed
        config.initialization = initialization
        return KMeans(config: config)
    }

    @Test("the objective never increases between iterations", arguments: KMeansConfig.Initialization.allCases)
    func objectiveDoesNotIncrease(initialization: KMeansConfig.Initialization) throws {
        let data = mixture(clusters: 12, perCluster: 60, dimension: 10, seed: 1)
        let result = try kmeans(k: 20, iterations: 20, initialization: initialization).train(data)
        #expect(result.iterations.count == 20)
        for (previous, current) in zip(result.iterations, result.iterations.dropFirst()) {
            // Relative tolerance 1e-6 for float rounding in the assignment's expansion.
            #expect(current.objective <= previous.objective * (1 + 1e-6), "iteration \(current.iteration): \(previous.objective) -> \(current.objective)")
        }
        #expect(result.iterations.last!.objective < result.iterations.first!.objective)
    }

    @Test("more centroids give a lower objective")
    func moreCentroidsLowerObjective() throws {
        let data = mixture(clusters: 30, perCluster: 30, dimension: 8, seed: 2)
        let objectives = try [4, 8, 16, 32, 64].map { try kmeans(k: $0, iterations: 20).train(data).objective }
        for (fewer, more) in zip(objectives, objectives.dropFirst()) {
            #expect(more < fewer, "\(objectives)")
        }
    }

    @Test("the objective is the sum of squared distances to the nearest centroid")
    func objectiveIsExact() throws {
        let data = mixture(clusters: 5, perCluster: 40, dimension: 6, seed: 3)
        var config = KMeansConfig(k: 7)
        config.iterations = 1
        let result = try KMeans(config: config).train(data)
        // Iteration 0's objective is measured against the initial centroids: k random points.
        // Recompute it independently from those points (re-derived with the same seed).
        var rng = SeededGenerator(seed: config.seed, stream: 0xC1)
        let initial = try KMeans(config: config).initialCentroids(ExactKNN.Chunk(vectors: data, start: 0), rng: &rng)
        var expected = 0.0
        for row in 0..<data.rows {
            var best = Double.infinity
            for c in 0..<7 {
                var sum = 0.0
                for j in 0..<6 { let diff = Double(data.row(row)[j]) - Double(initial.row(c)[j]); sum += diff * diff }
                best = min(best, sum)
            }
            expected += best
        }
        #expect(abs(result.iterations[0].objective - expected) <= 1e-4 * expected)
    }

    @Test("nasty data trains without NaN or empty clusters", arguments: KMeansConfig.Initialization.allCases)
    func nastyData(initialization: KMeansConfig.Initialization) throws {
        // 5 distinct points, 20 copies each, and 10 centroids.
        let distinct = mixture(clusters: 5, perCluster: 1, dimension: 4, seed: 4)
        let fiveDistinct = FloatMatrix(rows: 100, columns: 4)
        for row in 0..<100 { fiveDistinct.row(row).update(from: distinct.row(row % 5), count: 4) }
        // All rows identical.
        let identical = FloatMatrix(rows: 60, columns: 4)
        for row in 0..<60 { identical.row(row).update(from: distinct.row(0), count: 4) }
        // A cluster of 5 % exact duplicates inside normal data.
        let withDuplicates = mixture(clusters: 8, perCluster: 50, dimension: 4, seed: 5)
        for row in 0..<20 { withDuplicates.row(row * 7).update(from: withDuplicates.row(3), count: 4) }

        for (name, data, k) in [("5 distinct", fiveDistinct, 10), ("identical", identical, 4), ("5 % duplicates", withDuplicates, 16)] {
            let result = try kmeans(k: k, iterations: 10, initialization: initialization).train(data)
            let centroidValues = result.centroids.array
            #expect(centroidValues.allSatisfy { $0.isFinite }, "\(name): NaN or infinite centroid")
            #expect(result.iterations.allSatisfy { $0.objective.isFinite }, "\(name): non-finite objective")
            #expect(result.clusterSizes.allSatisfy { $0 > 0 }, "\(name): empty cluster \(result.clusterSizes)")
            #expect(result.clusterSizes.reduce(0, +) == data.rows, "\(name)")
        }
        let fiveResult = try kmeans(k: 10, iterations: 10, initialization: initialization).train(fiveDistinct)
        // Every distinct point is a centroid, up to float rounding and the 1/1024 nudges of the
        // splits that keep re-filling the 5 surplus centroids.
        var scale = 0.0
        for row in 0..<100 { scale += Double(VectorKernels.dot(fiveDistinct.row(row), fiveDistinct.row(row), count: 4)) }
        #expect(fiveResult.objective < 1e-5 * scale, "objective \(fiveResult.objective) against sum of squared norms \(scale)")
        #expect(fiveResult.iterations.contains { $0.splits > 0 })
    }

    @Test("the same seed gives bit-identical centroids at any thread count")
    func deterministicAcrossThreads() throws {
        let data = mixture(clusters: 10, perCluster: 200, dimension: 12, seed: 6)
        for initialization in KMeansConfig.Initialization.allCases {
            let one = try kmeans(k: 25, threads: 1, initialization: initialization).train(data)
            let two = try kmeans(k: 25, threads: 2, initialization: initialization).train(data)
            let three = try kmeans(k: 25, threads: 3, initialization: initialization).train(data)
            #expect(one.centroids.array == two.centroids.array)
            #expect(one.centroids.array == three.centroids.array)
            #expect(one.iterations.map(\.objective) == two.iterations.map(\.objective))
        }
        let other = try kmeans(k: 25, seed: 99).train(data)
        let reference = try kmeans(k: 25).train(data)
        #expect(other.centroids.array != reference.centroids.array)
    }

    @Test("subsampling, restarts and early stopping")
    func samplingRestartsTolerance() throws {
        let data = mixture(clusters: 10, perCluster: 100, dimension: 6, seed: 7)
        var config = KMeansConfig(k: 10)
        config.maxPointsPerCentroid = 20
        config.restarts = 3
        config.iterations = 50
        config.tolerance = 1e-3
        let result = try KMeans(config: config).train(data)
        #expect(result.sampleSize == 200)
        #expect(result.restartObjectives.count == 3)
        #expect(result.objective == result.restartObjectives.min())
        #expect(result.iterations.count < 50, "early stop did not trigger")
        #expect(throws: SimjobError.self) { try KMeans(config: KMeansConfig(k: 2000)).train(data) }
    }

    @Test("nearest-centroid assignment agrees with a brute force, ties to the lower index")
    func nearestCentroid() throws {
        var rng = SeededGenerator(seed: 8)
        // Integer coordinates make ties common and every product exact.
        let points = FloatMatrix(rows: 700, columns: 3, values: (0..<2100).map { _ in Float(rng.next() % 4) })
        let centroids = FloatMatrix(rows: 2100 / 3 / 10 * 3 + 5, columns: 3, values: (0..<((2100 / 3 / 10 * 3 + 5) * 3)).map { _ in Float(rng.next() % 4) })
        var indices = [Int32](repeating: -1, count: 700)
        try NearestCentroid(centroids: centroids).assign(points.pointer, rows: 700, lda: 3, rowNorms: nil, indices: &indices, scores: nil, threads: 2)
        for row in 0..<700 {
            var best = Float.infinity, bestIndex = -1
            for c in 0..<centroids.rows {
                let distance = VectorKernels.squaredDistance(points.row(row), centroids.row(c), count: 3)
                if distance < best { best = distance; bestIndex = c }
            }
            #expect(Int(indices[row]) == bestIndex, "row \(row)")
        }
    }
}
