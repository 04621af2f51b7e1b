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

    /// The hashes of `rows` consecutive rows, each equal to `row`'s. One row's hash is a chain
    /// of dependent multiplies (latency bound); four rows hashed side by side keep the
    /// multiplier busy (Fashion-MNIST's 188 MB: about 3x faster).
    public static func rows(_ x: UnsafePointer<Float>, rows: Int, dimension: Int, into hashes: UnsafeMutablePointer<UInt64>) {
        var r = 0
        x.withMemoryRebound(to: UInt32.self, capacity: rows * dimension) { words in
            while r + 4 <= rows {
                let w0 = words + r * dimension, w1 = w0 + dimension, w2 = w1 + dimension, w3 = w2 + dimension
                var h0 = offset, h1 = offset, h2 = offset, h3 = offset
                for j in 0..<dimension {
                    h0 = (h0 ^ UInt64(w0[j])) &* prime
                    h1 = (h1 ^ UInt64(w1[j])) &* prime
                    h2 = (h2 ^ UInt64(w2[j])) &* prime
                    h3 = (h3 ^ UInt64(w3[j])) &* prime
                }
                hashes[r] = avalanche(h0 ^ UInt64(dimension))
                hashes[r + 1] = avalanche(h1 ^ UInt64(dimension))
                hashes[r + 2] = avalanche(h2 ^ UInt64(dimension))
                hashes[r + 3] = avalanche(h3 ^ UInt64(dimension))
                r += 4
            }
        }
        while r < rows {
            hashes[r] = row(x + r * dimension, dimension: dimension)
            r += 1
        }
    }

    /// The running checksum of a set, updated with the next row's hash.
    @inline(__always)
    public static func fold(_ state: UInt64, _ rowHash: UInt64) -> UInt64 { (state ^ rowHash) &* prime }

    /// The start of a set's checksum.
    public static func start(rows: Int, dimension: Int) -> UInt64 { avalanche(offset ^ UInt64(rows) &* 31 ^ UInt64(dimension)) }
}
