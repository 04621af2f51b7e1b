import Foundation

/// The allowed range of every numeric option, in one table, checked before parsing so that a
/// value out of range (or negative) gets one line saying the range, whichever command it is on.
///
/// Bounds keep each size inside what the engine can index (int32 row ids) and allocate; the
/// engines check what depends on the data (k below the number of rows, m dividing the dimension).
enum OptionBounds {
    struct Bound {
        var range: ClosedRange<Double>
        var integer: Bool
    }

    static let int32Max = Double(Int32.max)

    /// Bounds by option name; `command.option` entries override for one command.
    static let table: [String: Bound] = [
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
        "duplicates": Bound(range: 0...0.5, integer: false),
        "seed": Bound(range: 0...Double(UInt64.max), integer: true),
        "nlist": Bound(range: 1...16_777_216, integer: true),
        "m": Bound(range: 1...65_536, integer: true),
        "nbits": Bound(range: 1...8, integer: true),
        "nprobe": Bound(range: 1...16_777_216, integer: true),
        "refine": Bound(range: 0...10_000, integer: true),
        "partitions": Bound(range: 0...16_777_216, integer: true),
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
    ]

    static func bound(command: String, option: String) -> Bound? {
        table["\(command).\(option)"] ?? table[option]
    }

    /// Joins `--option -5` into `--option=-5` (the parser would take `-5` for an option and
    /// report a missing value), then checks every bounded numeric value. Returns the arguments
    /// to parse, or throws a one-line message.
    static func prepare(_ arguments: [String], command: String) throws -> [String] {
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            if word == "--" { result += arguments[index...]; break }
            if word.hasPrefix("--"), !word.contains("="), index + 1 < arguments.count, looksNegative(arguments[index + 1]) {
                result.append(word + "=" + arguments[index + 1])
                index += 2
                continue
            }
            result.append(word)
            index += 1
        }
        var position = 0
        while position < result.count {
            let word = result[position]
            defer { position += 1 }
            guard word.hasPrefix("--") else { continue }
            var name = String(word.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            } else if position + 1 < result.count, !result[position + 1].hasPrefix("--") {
                value = result[position + 1]
            }
            guard let bound = bound(command: command, option: name), let value else { continue }
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                try check(String(part).trimmingCharacters(in: .whitespaces), option: name, bound: bound)
            }
        }
        return result
    }

    static func looksNegative(_ word: String) -> Bool {
        guard word.hasPrefix("-"), word.count > 1 else { return false }
        let second = word[word.index(after: word.startIndex)]
        return second.isNumber || second == "."
    }

    static func check(_ text: String, option: String, bound: Bound) throws {
        let allowed = describe(bound)
        guard let number = Double(text), number.isFinite else {
            // Not a number at all: let the parser say so, unless it is a negative or odd spelling.
            if text.hasPrefix("-") { throw BoundsError("--\(option) must be \(allowed) (got \(text))") }
            return
        }
        if bound.integer && number.rounded() != number {
            throw BoundsError("--\(option) must be a whole number, \(allowed) (got \(text))")
        }
        guard bound.range.contains(number) else {
            throw BoundsError("--\(option) must be \(allowed) (got \(text))")
        }
    }

    static func describe(_ bound: Bound) -> String {
        func format(_ value: Double) -> String {
            if bound.integer || value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
            if value == Double(UInt64.max) { return String(UInt64.max) }
            return String(value)
        }
        if bound.range.upperBound >= 1e29 { return "at least \(format(bound.range.lowerBound))" }
        return "between \(format(bound.range.lowerBound)) and \(format(bound.range.upperBound))"
    }
}

/// An option value out of its allowed range.
struct BoundsError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
