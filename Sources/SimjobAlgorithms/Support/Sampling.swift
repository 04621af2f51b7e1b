import SimjobKernels

/// `count` distinct indices of `0 ..< total`, drawn with a seeded partial Fisher-Yates shuffle
/// and returned in ascending order (so a sample reads its source front to back).
public func sampleIndices(_ count: Int, from total: Int, seed: UInt64) -> [Int] {
    guard count < total else { return Array(0..<total) }
    var rng = SeededGenerator(seed: seed, stream: 0x5A3B1E)
    var order = Array(0..<total)
    for index in 0..<count {
        order.swapAt(index, index + Int(rng.next() % UInt64(total - index)))
    }
    return order[0..<count].sorted()
}
