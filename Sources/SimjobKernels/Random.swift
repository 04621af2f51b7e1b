import Foundation

/// Xoshiro256** (Blackman and Vigna, "Scrambled linear pseudorandom number generators", 2018),
/// seeded through SplitMix64. Fast, statistically sound, and reproducible from a 64-bit seed on
/// every platform, which `SystemRandomNumberGenerator` is not.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator for `seed`; `stream` derives independent generators for parallel blocks, so
    /// results do not depend on how many threads ran them.
    public init(seed: UInt64, stream: UInt64 = 0) {
        var mix = seed ^ (stream &* 0x9E37_79B9_7F4A_7C15)
        func splitMix() -> UInt64 {
            mix &+= 0x9E37_79B9_7F4A_7C15
            var z = mix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    @inlinable
    static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = SeededGenerator.rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = SeededGenerator.rotl(state.3, 45)
        return result
    }

    /// A uniform Float in [0, 1).
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / Float(1 << 24))
    }

    /// A pair of independent standard normal values (Box-Muller transform).
    public mutating func nextGaussianPair() -> (Float, Float) {
        let u1 = max(Double(next() >> 11) * (1.0 / Double(1 << 53)), .leastNonzeroMagnitude)
        let u2 = Double(next() >> 11) * (1.0 / Double(1 << 53))
        let radius = (-2 * log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        return (Float(radius * cos(angle)), Float(radius * sin(angle)))
    }

    /// Fills `count` floats with standard normal values.
    public mutating func fillGaussian(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        var index = 0
        while index + 1 < count {
            let (a, b) = nextGaussianPair()
            buffer[index] = a
            buffer[index + 1] = b
            index += 2
        }
        if index < count { buffer[index] = nextGaussianPair().0 }
    }
}
