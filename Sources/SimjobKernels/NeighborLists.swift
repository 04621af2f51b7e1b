/// Bounded, sorted top-k lists for many rows at once, in flat buffers.
///
/// Row `r` holds its best `k` candidates in `scores[r*k ..< r*k+k]` and `ids[...]`, sorted by
/// `(score, id)` ascending: nearest first, ties broken by the smaller id. Empty slots hold
/// `(+infinity, Int32.max)`, so they sort last and every real candidate beats them.
/// `bounds[r]` is the k-th score (the admission bound): a scan drops every candidate whose
/// score is above it without touching the list.
///
/// The lists do not check for repeated ids: the engine offers each (row, candidate) pair once.
/// Insertion is O(k) (a shift in a short array); after the lists fill, almost every candidate
/// is rejected by the bound, so insertion cost does not matter for k up to a few hundred.
public struct NeighborLists: @unchecked Sendable {
    public let rows: Int
    public let k: Int
    public let scores: UnsafeMutablePointer<Float>
    public let ids: UnsafeMutablePointer<Int32>
    public let bounds: UnsafeMutablePointer<Float>

    public static let emptyID = Int32.max

    /// Allocates empty lists; release them with `deallocate()`. With `emptied: false` the
    /// caller empties them (`reset(rows:)`, by parts on several threads for large lists: the
    /// first touch of fresh pages is most of the cost).
    public init(rows: Int, k: Int, emptied: Bool = true) {
        precondition(k >= 1, "k must be at least 1")
        self.rows = rows
        self.k = k
        scores = .allocate(capacity: max(rows * k, 1))
        ids = .allocate(capacity: max(rows * k, 1))
        bounds = .allocate(capacity: max(rows, 1))
        if emptied { reset() }
    }

    public func deallocate() {
        scores.deallocate()
        ids.deallocate()
        bounds.deallocate()
    }

    /// Empties every list.
    public func reset() { reset(rows: 0..<rows) }

    /// Empties the lists of `range`.
    public func reset(rows range: Range<Int>) {
        (scores + range.lowerBound * k).initialize(repeating: .infinity, count: range.count * k)
        (ids + range.lowerBound * k).initialize(repeating: Self.emptyID, count: range.count * k)
        (bounds + range.lowerBound).initialize(repeating: .infinity, count: range.count)
    }

    /// Offers candidate `id` at `score` to row `row`'s list.
    @inlinable
    public func insert(row: Int, score: Float, id: Int32) {
        let first = row * k
        let last = first + k - 1
        let lastScore = scores[last]
        if score > lastScore || (score == lastScore && id >= ids[last]) { return }
        var position = last
        while position > first {
            let previousScore = scores[position - 1]
            if previousScore < score || (previousScore == score && ids[position - 1] < id) { break }
            scores[position] = previousScore
            ids[position] = ids[position - 1]
            position -= 1
        }
        scores[position] = score
        ids[position] = id
        bounds[row] = scores[last]
    }

    /// Offers `id` at `score` to row `row`'s list, which may hold `id` already: then the lower
    /// of the two scores is kept. Whatever order a row's offers arrive in, its list ends as the
    /// best `k` ids by the lowest score each was offered at (`insert` after a `contains` check
    /// keeps the first score instead, which depends on the order when one pair arrives with
    /// scores that differ in their last bits). True when the list changed.
    @discardableResult
    public func insertOrLower(row: Int, score: Float, id: Int32) -> Bool {
        let first = row * k
        let last = first + k - 1
        if score > scores[last] || (score == scores[last] && id >= ids[last]) { return false }
        var held = first
        while held <= last && ids[held] != id { held += 1 }
        if held <= last {
            guard score < scores[held] else { return false }
            // Out, then in at its new place (nearer the front).
            var slot = held
            while slot < last {
                scores[slot] = scores[slot + 1]
                ids[slot] = ids[slot + 1]
                slot += 1
            }
            scores[last] = .infinity
            ids[last] = Self.emptyID
        }
        insert(row: row, score: score, id: id)
        return true
    }

    /// Merges `other`'s lists of rows `range` (same rows and k) into these. With `skippingHeld`,
    /// an id a list already holds is not offered again (when both sides may have found the same
    /// pair); without, the candidates must be disjoint.
    public func merge(_ other: NeighborLists, rows range: Range<Int>, skippingHeld: Bool = false) {
        precondition(other.k == k)
        for row in range {
            let first = row * k
            for slot in first..<(first + k) {
                let id = other.ids[slot]
                if id == Self.emptyID { break }
                let score = other.scores[slot]
                if score > bounds[row] { break }
                if skippingHeld && contains(row: row, id: id) { continue }
                insert(row: row, score: score, id: id)
            }
        }
    }

    /// Merges `count` candidates sorted by `(score, id)` and absent from the list into row
    /// `row`'s list in one pass (what `insert` would make of them one by one).
    @inlinable
    public func mergeSorted(row: Int, entries: UnsafePointer<CandidateScan.Entry>, count: Int) {
        let first = row * k
        guard count > 0, entries[0].score < scores[first + k - 1] || (entries[0].score == scores[first + k - 1] && entries[0].id < ids[first + k - 1]) else { return }
        withUnsafeTemporaryAllocation(of: (Float, Int32).self, capacity: k) { merged in
            var i = 0, j = 0
            for slot in 0..<k {
                let takeList: Bool
                if j >= count {
                    takeList = true
                } else {
                    let listScore = scores[first + i], listID = ids[first + i]
                    let score = entries[j].score, id = entries[j].id
                    takeList = listScore < score || (listScore == score && listID < id)
                }
                if takeList {
                    merged[slot] = (scores[first + i], ids[first + i])
                    i += 1
                } else {
                    merged[slot] = (entries[j].score, entries[j].id)
                    j += 1
                }
            }
            for slot in 0..<k {
                scores[first + slot] = merged[slot].0
                ids[first + slot] = merged[slot].1
            }
        }
        bounds[row] = scores[first + k - 1]
    }

    /// Whether row `row`'s list holds `id` (16 ids per compare).
    @inlinable
    public func contains(row: Int, id: Int32) -> Bool {
        let first = row * k
        let raw = UnsafeRawPointer(ids + first)
        let target = SIMD16<Int32>(repeating: id)
        var slot = 0
        while slot + 16 <= k {
            if VectorKernels.anyLane(raw.loadUnaligned(fromByteOffset: slot * 4, as: SIMD16<Int32>.self) .== target) { return true }
            slot += 16
        }
        while slot < k {
            if ids[first + slot] == id { return true }
            slot += 1
        }
        return false
    }

    /// Number of filled slots in a row.
    public func count(row: Int) -> Int {
        var filled = 0
        while filled < k && ids[row * k + filled] != Self.emptyID { filled += 1 }
        return filled
    }
}
