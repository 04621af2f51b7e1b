/// What every result must satisfy, checked in debug builds (so the whole test suite runs with
/// them) and compiled out of release builds, in the manner of swift-collections' invariant
/// checks: a broken invariant stops the process at once, naming what broke.
public enum Invariants {
    /// True in debug builds (`swift build`, `swift test`), false with `-O`/`-Ounchecked`.
    @inlinable
    public static var enabled: Bool { _isDebugAssertConfiguration() }

    /// Neighbour lists: nearest first (distances never decrease along a row), no repeated id,
    /// ids in `0..<idLimit`, missing entries (-1, +inf) only at a row's end, and in a graph no
    /// row listed as its own neighbour.
    public static func check(_ table: NeighborTable, idLimit: Int, selfJoin: Bool, what: String) {
        guard enabled else { return }
        var seen = Set<Int32>()
        for row in 0..<table.rows {
            seen.removeAll(keepingCapacity: true)
            var ended = false
            var previous = -Float.infinity
            for slot in 0..<table.k {
                let id = table.ids[row * table.k + slot], distance = table.distances[row * table.k + slot]
                if id == -1 {
                    ended = true
                    precondition(distance == .infinity, "\(what): row \(row) slot \(slot) is empty but has distance \(distance)")
                    continue
                }
                precondition(!ended, "\(what): row \(row) has id \(id) after an empty slot")
                precondition(id >= 0 && Int(id) < idLimit, "\(what): row \(row) lists id \(id), outside 0..<\(idLimit)")
                precondition(seen.insert(id).inserted, "\(what): row \(row) lists id \(id) twice")
                precondition(!(selfJoin && Int(id) == row), "\(what): row \(row) lists itself")
                precondition(!distance.isNaN && distance >= previous, "\(what): row \(row) is not sorted at slot \(slot) (\(previous) then \(distance))")
                previous = distance
            }
        }
    }

    /// Every value of a matrix is finite (centroids, codebooks).
    public static func checkFinite(_ matrix: FloatMatrix, what: String) {
        guard enabled else { return }
        for index in 0..<(matrix.rows * matrix.columns) where !matrix.pointer[index].isFinite {
            preconditionFailure("\(what): entry \(index / max(matrix.columns, 1)), \(index % max(matrix.columns, 1)) is \(matrix.pointer[index])")
        }
    }
}
