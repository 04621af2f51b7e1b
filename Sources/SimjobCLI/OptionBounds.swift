import Foundation
import SimjobAlgorithms
import SimjobOperations

/// The command line's side of `OptionBounds`: values checked before the parser sees them.
enum ArgumentBounds {
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
            guard OptionBounds.bound(command: command, option: name) != nil, let value else { continue }
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                try check(String(part).trimmingCharacters(in: .whitespaces), option: name, command: command)
            }
        }
        return result
    }

    static func looksNegative(_ word: String) -> Bool {
        guard word.hasPrefix("-"), word.count > 1 else { return false }
        let second = word[word.index(after: word.startIndex)]
        return second.isNumber || second == "."
    }

    static func check(_ text: String, option: String, command: String) throws {
        guard let number = Double(text) else {
            // Not a number: the parser says so, unless it is a negative spelling it would misread.
            if text.hasPrefix("-") { throw SimjobError("--\(option) must be a number (got \(text))", kind: .usage) }
            return
        }
        if let problem = OptionBounds.problem(number, option: option, command: command, text: text) {
            throw SimjobError("--\(option) \(problem)", kind: .usage)
        }
    }
}

