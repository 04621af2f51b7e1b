import Foundation
import Testing
@testable import SimjobKernels

/// The small pieces the candidate scan selects with: a comparison mask as bits, and the bound
/// a row's first tile takes from its group minima.
@Suite("Selection kernels")
struct SelectionKernelTests {
    @Test("laneBits sets bit i exactly where lane i of the comparison holds")
    func laneBits() {
        var rng = SeededGenerator(seed: 77)
        for lane in 0..<16 {
            var values = SIMD16<Float>(repeating: 1)
            values[lane] = -1
            #expect(VectorKernels.laneBits(values .< 0) == 1 << lane)
        }
        #expect(VectorKernels.laneBits(SIMD16<Float>(repeating: 1) .< 0) == 0)
        #expect(VectorKernels.laneBits(SIMD16<Float>(repeating: -1) .< 0) == 0xFFFF)
        for _ in 0..<1000 {
            var values = SIMD16<Float>()
            var expected = 0
            for lane in 0..<16 {
                values[lane] = rng.nextUnitFloat() - 0.5
                if values[lane] <= 0.1 { expected |= 1 << lane }
            }
            #expect(VectorKernels.laneBits(values .<= SIMD16(repeating: 0.1)) == expected)
        }
    }

    @Test("rankBound is at or above the rank-th smallest minimum, at most 1/4096 of their range above it (to float rounding: 0.1 % of that, plus 1e-5 relative)")
    func rankBound() {
        var rng = SeededGenerator(seed: 5)
        for trial in 0..<500 {
            let groups = 1 + trial % 5
            let count = 16 * groups
            let rank = 1 + Int(rng.next() % UInt64(count))
            let minima = UnsafeMutablePointer<SIMD16<Float>>.allocate(capacity: groups)
            defer { minima.deallocate() }
            var values: [Float] = []
            // Negative and positive scores, ties, and a narrow range in some trials.
            let spread: Float = trial % 7 == 0 ? 1e-3 : 100
            for g in 0..<groups {
                for lane in 0..<16 {
                    var value = (rng.nextUnitFloat() - 0.3) * spread
                    if trial % 11 == 0 { value = Float(Int(value)) }
                    minima[g][lane] = value
                    values.append(value)
                }
            }
            let bound = CandidateScan.rankBound(minima, groups: groups, rank: rank)
            let sorted = values.sorted()
            let exact = sorted[rank - 1]
            #expect(values.filter { $0 <= bound }.count >= rank, "trial \(trial): fewer than \(rank) minima at or below \(bound)")
            #expect(bound >= exact && bound - exact <= (sorted.last! - sorted.first!) / 4096 * 1.001 + 1e-5 * max(1, abs(exact)), "trial \(trial): \(bound) against \(exact), range \(sorted.first!) ... \(sorted.last!), rank \(rank) of \(count)")
        }
    }
}

/// Row hashes go into every artifact's provenance: their values must never change.
@Suite("Row hashes")
struct RowHashTests {
    @Test("rows hashed four at a time equal one at a time, for every tail length, and known values stay as they were")
    func rowsMatchRow() {
        // FNV-1a over the float bits then a finaliser, computed independently (Python).
        #expect(RowHash.row([1.0, -2.5, 0.0, 3.25], dimension: 4) == 0x4b14_03bd_dc7c_4918)
        #expect(RowHash.row([Float](repeating: 0.5, count: 7), dimension: 7) == 0x4c9e_00c3_6298_4ba7)
        var rng = SeededGenerator(seed: 9)
        for dimension in [1, 3, 16, 33] {
            for rows in 0...9 {
                var values = [Float](repeating: 0, count: max(rows * dimension, 1))
                for index in values.indices { values[index] = rng.nextUnitFloat() * 4 - 2 }
                var hashes = [UInt64](repeating: 0, count: max(rows, 1))
                values.withUnsafeBufferPointer { x in
                    hashes.withUnsafeMutableBufferPointer { RowHash.rows(x.baseAddress!, rows: rows, dimension: dimension, into: $0.baseAddress!) }
                }
                for r in 0..<rows {
                    let single = values.withUnsafeBufferPointer { RowHash.row($0.baseAddress! + r * dimension, dimension: dimension) }
                    #expect(hashes[r] == single, "row \(r) of \(rows), dimension \(dimension)")
                }
            }
        }
    }
}

@Suite("Neighbour lists")
struct NeighborListOrderTests {
    @Test("insertOrLower ends with the same list whatever order the offers come in, duplicates at different scores included")
    func orderIndependent() {
        var rng = SeededGenerator(seed: 31)
        for trial in 0..<200 {
            let k = 1 + trial % 12
            // 40 offers of 25 ids: many ids offered twice or more, at scores a few ulps apart
            // (as two sgemm calls give one pair) or far apart, and exact ties between ids.
            var offers: [(Float, Int32)] = []
            for _ in 0..<40 {
                let id = Int32(rng.next() % 25)
                var score = Float(id % 9) + (trial % 3 == 0 ? 0 : rng.nextUnitFloat() * 0.5)
                if rng.next() % 3 == 0 { score = score.nextUp.nextUp }
                offers.append((score, id))
            }
            var reference: ([Float], [Int32])?
            for _ in 0..<6 {
                offers.shuffle(using: &rng)
                let lists = NeighborLists(rows: 1, k: k)
                defer { lists.deallocate() }
                for (score, id) in offers { lists.insertOrLower(row: 0, score: score, id: id) }
                let result = (Array(UnsafeBufferPointer(start: lists.scores, count: k)), Array(UnsafeBufferPointer(start: lists.ids, count: k)))
                // Distinct ids, sorted, each at the lowest score it was offered at.
                let held = result.1.filter { $0 != NeighborLists.emptyID }
                #expect(Set(held).count == held.count)
                for (slot, id) in held.enumerated() {
                    #expect(result.0[slot] == offers.filter { $0.1 == id }.map(\.0).min()!)
                }
                if let reference {
                    #expect(reference.0 == result.0 && reference.1 == result.1, "trial \(trial): the order of the offers changed the list")
                } else {
                    reference = result
                }
            }
        }
    }
}
