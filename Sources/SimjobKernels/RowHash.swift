/// 64-bit content hashes of float rows, for provenance checks: which vectors an artifact was
/// built from.
///
/// A row hashes its float32 bit patterns word by word with `h = (h ^ w) * p` (FNV-1a on
/// 32-bit words, p odd): each step is a bijection of the state for a fixed word and of the
/// word for a fixed state, so rows that differ in exactly one word always hash differently;
/// other differences collide with probability about 2^-64. A final avalanche spreads the bits.
/// The set's checksum folds the row hashes in row order the same way, so it depends on every
/// row and their order.
public enum RowHash {
    static let prime: UInt64 = 0x0000_0100_0000_01B3
    static let offset: UInt64 = 0xCBF2_9CE4_8422_2325

    @inline(__always)
    static func avalanche(_ value: UInt64) -> UInt64 {
        var x = value
        x ^= x >> 33
        x = x &* 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 33
        x = x &* 0xC4CE_B9FE_1A85_EC53
        x ^= x >> 33
        return x
    }

    /// The hash of one row of `dimension` floats.
    public static func row(_ x: UnsafePointer<Float>, dimension: Int) -> UInt64 {
        var h = offset
        x.withMemoryRebound(to: UInt32.self, capacity: dimension) { words in
            for j in 0..<dimension { h = (h ^ UInt64(words[j])) &* prime }
        }
        return avalanche(h ^ UInt64(dimension))
    }

    /// The hashes of `rows` consecutive rows. (Four rows side by side, to overlap their chains
    /// of dependent multiplies, were slower: the compiler turned them into 64-bit vector
    /// multiplies emulated with three 32-bit ones each.)
    public static func rows(_ x: UnsafePointer<Float>, rows: Int, dimension: Int, into hashes: UnsafeMutablePointer<UInt64>) {
        for r in 0..<rows { hashes[r] = row(x + r * dimension, dimension: dimension) }
    }

    /// The running checksum of a set, updated with the next row's hash.
    @inline(__always)
    public static func fold(_ state: UInt64, _ rowHash: UInt64) -> UInt64 { (state ^ rowHash) &* prime }

    /// The start of a set's checksum.
    public static func start(rows: Int, dimension: Int) -> UInt64 { avalanche(offset ^ UInt64(rows) &* 31 ^ UInt64(dimension)) }
}
