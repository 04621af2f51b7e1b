import Foundation

/// The allowed range of every numeric option and job key, in one table: the command line checks
/// values before parsing (so a negative number or one out of range gets one line saying the
/// range, whichever command it is on), the job planner checks step keys against the same table.
/// Names are the options' (`latent-dim`); job keys (`latent_dim`) map to them.
///
/// Bounds keep each size inside what the engine can index (int32 row ids) and allocate; the
/// engines check what depends on the data (k below the number of rows, m dividing the dimension).
public enum OptionBounds {
    public struct Bound: Sendable {
        public var range: ClosedRange<Double>
        public var integer: Bool
    }

    static let int32Max = Double(Int32.max)

    /// Bounds by option name; `command.option` entries override for one command.
    public static let table: [String: Bound] = [
        "threads": Bound(range: 1...4096, integer: true),
        "k": Bound(range: 1...100_000, integer: true),
        "generate.k": Bound(range: 0...100_000, integer: true),
        "block": Bound(range: 16...65_536, integer: true),
        "block-rows": Bound(range: 1...16_777_216, integer: true),
        "n": Bound(range: 1...int32Max, integer: true),
        "queries": Bound(range: 0...int32Max, integer: true),
        "dim": Bound(range: 1...65_536, integer: true),
        "clusters": Bound(range: 1...16_777_216, integer: true),
        "latent-dim": Bound(range: 0...65_536, integer: true),
        "anisotropy": Bound(range: 0...8, integer: false),
        "duplicates": Bound(range: 0...0.5, integer: false),
        "seed": Bound(range: 0...Double(UInt64.max), integer: true),
        "nlist": Bound(range: 1...16_777_216, integer: true),
        "m": Bound(range: 1...65_536, integer: true),
        "nbits": Bound(range: 1...8, integer: true),
        "nprobe": Bound(range: 1...16_777_216, integer: true),
        "ef": Bound(range: 1...16_777_216, integer: true),
        "tables": Bound(range: 1...1024, integer: true),
        "hash-bits": Bound(range: 0...31, integer: true),
        "probes": Bound(range: 1...1_048_576, integer: true),
        "trees": Bound(range: 1...4096, integer: true),
        "leaf-size": Bound(range: 0...1_000_000, integer: true),
        "search-k": Bound(range: 1...Double(Int32.max), integer: true),
        "dedup.nprobe": Bound(range: 0...16_777_216, integer: true),
        "refine": Bound(range: 0...10_000, integer: true),
        "partitions": Bound(range: 0...16_777_216, integer: true),
        "dimension": Bound(range: 0...65_536, integer: true),
        "candidates": Bound(range: 0...100_000, integer: true),
        "expand": Bound(range: 0...1_000, integer: true),
        "iterations": Bound(range: 1...100_000, integer: true),
        "coarse-iterations": Bound(range: 1...100_000, integer: true),
        "pq-iterations": Bound(range: 1...100_000, integer: true),
        "restarts": Bound(range: 1...1000, integer: true),
        "tolerance": Bound(range: 0...1, integer: false),
        "max-points-per-centroid": Bound(range: 0...int32Max, integer: true),
        "recall-sample": Bound(range: 0...int32Max, integer: true),
        "runs": Bound(range: 1...1000, integer: true),
        "latency-queries": Bound(range: 0...int32Max, integer: true),
        "sample": Bound(range: 1...int32Max, integer: true),
        "threshold": Bound(range: 0...1e30, integer: false),
        "sgemm-seconds": Bound(range: 0.05...60, integer: false),
        "max-pairs": Bound(range: 1...9.0e18, integer: true),
        "rounds": Bound(range: 0...50, integer: true),
        "recall": Bound(range: 0.01...1, integer: false),
    ]

    public static func bound(command: String, option: String) -> Bound? {
        table["\(command).\(option)"] ?? table[option]
    }

    /// The problem with `number` as a value of `option` on `command` (a command name or step
    /// kind), as "must be between 1 and 4096 (got 0)"; nil when it is allowed or unbounded.
    public static func problem(_ number: Double, option: String, command: String, text: String? = nil) -> String? {
        let name = option.replacingOccurrences(of: "_", with: "-")
        let step = command.replacingOccurrences(of: "_", with: "-")
        guard let bound = bound(command: step, option: name) else { return nil }
        let shown = text ?? (number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number))
        if !number.isFinite { return "must be a finite number, \(describe(bound)) (got \(shown))" }
        if bound.integer && number.rounded() != number { return "must be a whole number, \(describe(bound)) (got \(shown))" }
        guard bound.range.contains(number) else { return "must be \(describe(bound)) (got \(shown))" }
        return nil
    }

    public static func describe(_ bound: Bound) -> String {
        func format(_ value: Double) -> String {
            if bound.integer || value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
            if value == Double(UInt64.max) { return String(UInt64.max) }
            return String(value)
        }
        if bound.range.upperBound >= 1e29 { return "at least \(format(bound.range.lowerBound))" }
        return "between \(format(bound.range.lowerBound)) and \(format(bound.range.upperBound))"
    }
}
