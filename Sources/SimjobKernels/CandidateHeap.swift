/// A bounded max-heap of (score, id) candidates: the `capacity` best seen so far, worst on top.
///
/// `NeighborLists` keeps sorted arrays, O(k) per insertion, which is right for the short lists
/// of k-NN graphs. A shortlist of hundreds of candidates (IVF-PQ with refinement) takes
/// thousands of insertions per query; here each costs O(log capacity). Order is by
/// (score, id), so ties are broken by id exactly as in `NeighborLists`.
public struct CandidateHeap {
    public let capacity: Int
    @usableFromInline var storedCount = 0
    public var count: Int { storedCount }
    @usableFromInline let scores: UnsafeMutablePointer<Float>
    @usableFromInline let ids: UnsafeMutablePointer<Int32>

    public init(capacity: Int) {
        precondition(capacity >= 1)
        self.capacity = capacity
        scores = .allocate(capacity: capacity)
        ids = .allocate(capacity: capacity)
    }

    public func deallocate() {
        scores.deallocate()
        ids.deallocate()
    }

    public mutating func removeAll() { storedCount = 0 }

    /// Scores above this cannot enter (+infinity until the heap is full).
    @inlinable
    public var bound: Float { count < capacity ? .infinity : scores[0] }

    @inlinable
    static func isWorse(_ a: Float, _ aID: Int32, than b: Float, _ bID: Int32) -> Bool {
        a > b || (a == b && aID > bID)
    }

    /// Offers a candidate; it enters when the heap has room or it beats the worst held.
    @inlinable
    public mutating func offer(score: Float, id: Int32) {
        if count < capacity {
            // Sift up.
            var child = storedCount
            storedCount += 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard CandidateHeap.isWorse(score, id, than: scores[parent], ids[parent]) else { break }
                scores[child] = scores[parent]
                ids[child] = ids[parent]
                child = parent
            }
            scores[child] = score
            ids[child] = id
            return
        }
        guard CandidateHeap.isWorse(scores[0], ids[0], than: score, id) else { return }
        // Replace the top and sift down.
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < count else { break }
            var worst = left
            let right = left + 1
            if right < count && CandidateHeap.isWorse(scores[right], ids[right], than: scores[left], ids[left]) { worst = right }
            guard CandidateHeap.isWorse(scores[worst], ids[worst], than: score, id) else { break }
            scores[parent] = scores[worst]
            ids[parent] = ids[worst]
            parent = worst
        }
        scores[parent] = score
        ids[parent] = id
    }

    /// The candidates held, in no particular order.
    @inlinable
    public func forEach(_ body: (Float, Int32) -> Void) {
        for index in 0..<count { body(scores[index], ids[index]) }
    }
}
