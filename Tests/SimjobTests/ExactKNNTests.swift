import Foundation
import Testing
@testable import SimjobAlgorithms
@testable import SimjobOperations
import SimjobKernels

@Suite("Exact k-NN engine")
struct ExactKNNTests {
    func engine(k: Int, threads: Int = 2, symmetric: Bool = true, block: Int = 64) -> ExactKNN {
        var config = ExactKNNConfig(k: k, threads: threads)
        config.symmetric = symmetric
        config.block = block
        var engine = ExactKNN(config: config)
        engine.progressStyle = .silent
        return engine
    }

    @Test("graph matches an independent brute force", arguments: Metric.allCases, [true, false])
    func graphMatchesBruteForce(metric: Metric, symmetric: Bool) throws {
        // 300 rows in blocks of 64: an odd block count (the circle method's dummy) and a ragged
        // last block; dimension 21 leaves a SIMD tail in every kernel.
        let data = gaussianMatrix(rows: 300, dimension: 21, seed: 11)
        let (table, _) = try engine(k: 7, symmetric: symmetric).graph(data, metric: metric)
        let reference = bruteForce(queries: data, base: data, k: 7, metric: metric, excludeSelf: true)
        expectMatches(table, reference, tolerance: 2e-5 * (metric == .euclidean ? 10 : 1))
        for row in 0..<table.rows { #expect(!table.ids(ofRow: row).contains(Int32(row)), "row \(row) lists itself") }
    }

    @Test("search matches an independent brute force", arguments: Metric.allCases)
    func searchMatchesBruteForce(metric: Metric) throws {
        let base = gaussianMatrix(rows: 333, dimension: 40, seed: 5)
        let queries = gaussianMatrix(rows: 70, dimension: 40, seed: 6)
        let (table, _) = try engine(k: 12).search(queries: queries, base: base, metric: metric)
        let reference = bruteForce(queries: queries, base: base, k: 12, metric: metric, excludeSelf: false)
        expectMatches(table, reference, tolerance: 1e-4)
    }

    @Test("integer data: every tie is broken by the smaller id", arguments: Metric.allCases)
    func tiesBrokenByID(metric: Metric) throws {
        // Coordinates in {0, 1, 2}: distances repeat constantly and small integers make every
        // product exact in Float, so the order must match the reference id for id.
        var rng = SeededGenerator(seed: 3)
        let values = (0..<(240 * 5)).map { _ in Float(rng.next() % 3) }
        let data = FloatMatrix(rows: 240, columns: 5, values: values)
        let (table, _) = try engine(k: 9, block: 32).graph(data, metric: metric)
        let reference = bruteForce(queries: data, base: data, k: 9, metric: metric, excludeSelf: true)
        if metric == .angular {
            // 1 - cos is irrational in general: compare with a tolerance, ties by tolerance.
            expectMatches(table, reference, tolerance: 1e-6)
        } else {
            for row in 0..<table.rows {
                let expected = reference[row].prefix(9)
                #expect(table.ids(ofRow: row).map(Int.init) == expected.map(\.id), "row \(row)")
                #expect(table.distances(ofRow: row).map(Double.init) == expected.map { Double(Float($0.distance)) }, "row \(row)")
            }
        }
    }

    @Test("exact duplicates are each other's neighbours at distance 0")
    func duplicatesAtZero() throws {
        let data = gaussianMatrix(rows: 100, dimension: 16, seed: 8)
        // Rows 10, 50 and 90 are one vector; 20 and 21 another.
        for target in [50, 90] { data.row(target).update(from: data.row(10), count: 16) }
        data.row(21).update(from: data.row(20), count: 16)
        for metric in Metric.allCases where metric != .ip {
            let (table, _) = try engine(k: 3, block: 16).graph(data, metric: metric)
            #expect(table.ids(ofRow: 10).prefix(2) == [50, 90], "\(metric)")
            #expect(table.ids(ofRow: 50).prefix(2) == [10, 90], "\(metric)")
            #expect(table.ids(ofRow: 90).prefix(2) == [10, 50], "\(metric)")
            #expect(table.distances(ofRow: 10).prefix(2) == [0, 0], "\(metric)")
            #expect(table.ids(ofRow: 21).first == 20 && table.distances(ofRow: 21).first == 0, "\(metric)")
        }
    }

    @Test("k = n - 1 lists every other row exactly once")
    func kIsNMinusOne() throws {
        let data = gaussianMatrix(rows: 37, dimension: 8, seed: 2)
        let (table, _) = try engine(k: 36, block: 16).graph(data, metric: .euclidean)
        for row in 0..<37 {
            #expect(Set(table.ids(ofRow: row)) == Set((0..<37).filter { $0 != row }.map(Int32.init)))
            let distances = table.distances(ofRow: row)
            #expect(distances == distances.sorted())
        }
    }

    @Test("k larger than the set is a clear error")
    func kTooLarge() throws {
        let data = gaussianMatrix(rows: 10, dimension: 4, seed: 1)
        #expect(throws: SimjobError.self) { try engine(k: 10).graph(data, metric: .euclidean) }
        #expect(throws: SimjobError.self) { try engine(k: 11).search(queries: data, base: data, metric: .euclidean) }
        let single = gaussianMatrix(rows: 1, dimension: 4, seed: 1)
        #expect(throws: SimjobError.self) { try engine(k: 1).graph(single, metric: .euclidean) }
        // A single base row still answers a search with k = 1.
        let (table, _) = try engine(k: 1).search(queries: data, base: single, metric: .euclidean)
        #expect(table.idArray == [Int32](repeating: 0, count: 10))
    }

    @Test("angular: a zero vector is at distance 1 from everything")
    func zeroVectorsUnderAngular() throws {
        let data = gaussianMatrix(rows: 20, dimension: 6, seed: 4)
        data.row(3).update(repeating: 0, count: 6)
        data.row(7).update(repeating: 0, count: 6)
        let (table, _) = try engine(k: 19, block: 16).graph(data, metric: .angular)
        let row3 = table.distances(ofRow: 3)
        #expect(row3.allSatisfy { $0 == 1 })
        // Ties at 1 are broken by id: row 3's list is every other row in id order.
        #expect(table.ids(ofRow: 3) == (0..<20).filter { $0 != 3 }.map(Int32.init))
        for row in 0..<20 where row != 3 && row != 7 {
            let ids = table.ids(ofRow: row), distances = table.distances(ofRow: row)
            let position = ids.firstIndex(of: 3)!
            #expect(distances[position] == 1)
        }
    }

    @Test("results do not depend on threads, block size or symmetry")
    func resultsAreStable() throws {
        let data = gaussianMatrix(rows: 257, dimension: 33, seed: 9)
        let (reference, _) = try engine(k: 5, threads: 1, symmetric: true, block: 64).graph(data, metric: .euclidean)
        for (threads, block, symmetric) in [(2, 64, true), (2, 16, true), (3, 100, true), (2, 64, false), (1, 1024, false)] {
            let (table, _) = try engine(k: 5, threads: threads, symmetric: symmetric, block: block).graph(data, metric: .euclidean)
            #expect(table.idArray == reference.idArray, "threads \(threads) block \(block) symmetric \(symmetric)")
            #expect(table.distanceArray == reference.distanceArray, "threads \(threads) block \(block) symmetric \(symmetric)")
        }
    }

    @Test("the symmetric schedule meets every pair of blocks exactly once, none twice in a round", arguments: [1, 2, 5, 8, 13])
    func scheduleCoversEveryPairOnce(blockCount: Int) {
        var config = ExactKNNConfig(k: 1)
        config.block = 10
        let engine = ExactKNN(config: config)
        let rows = blockCount * 10 - 3
        var seen: [String: Int] = [:]
        for round in engine.schedule(rowCount: rows, columnCount: rows, sameChunk: true, symmetric: true) {
            var blocksInRound: [Int] = []
            for tile in round {
                seen["\(tile.row)-\(tile.column)", default: 0] += 1
                blocksInRound.append(tile.row)
                if tile.column != tile.row { blocksInRound.append(tile.column) }
            }
            #expect(Set(blocksInRound).count == blocksInRound.count, "a block appears twice in one round")
        }
        #expect(seen.count == blockCount * (blockCount + 1) / 2)
        #expect(seen.values.allSatisfy { $0 == 1 })
        // Between two different chunks: a Latin square of rounds.
        var crossSeen: Set<String> = []
        for round in engine.schedule(rowCount: 35, columnCount: rows, sameChunk: false, symmetric: true) {
            #expect(Set(round.map(\.row)).count == round.count && Set(round.map(\.column)).count == round.count)
            for tile in round { crossSeen.insert("\(tile.row)-\(tile.column)") }
        }
        #expect(crossSeen.count == 4 * blockCount)
    }
}
