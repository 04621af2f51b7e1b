import Foundation

/// Process memory figures from the kernel (Linux /proc).
public enum ProcessMemory {
    /// Peak resident set size ("high-water mark") of this process, in bytes.
    public static var peakResidentBytes: Int { statusField("VmHWM") }
    /// Starts a new peak measurement (Linux: `/proc/self/clear_refs` with 5 resets the
    /// high-water mark to the current size), so each step of a job reports its own peak.
    public static func resetPeak() {
        if let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
            handle.write(Data("5".utf8))
            try? handle.close()
        }
    }

    /// Current resident set size, in bytes.
    public static var residentBytes: Int { statusField("VmRSS") }

    private static func statusField(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let digits = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return digits * 1024
        }
        return 0
    }

    /// Total physical memory, in bytes.
    public static var physicalBytes: Int { Int(ProcessInfo.processInfo.physicalMemory) }

    /// A `--memory-limit` in bytes: the one given, else half of RAM.
    public static func limit(_ given: ByteCount?) -> Int { given?.bytes ?? physicalBytes / 2 }
}

/// Human-readable byte counts ("1.5 GiB").
public func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

/// A byte count: written as a number of bytes or with a unit (`512M`, `4G`, `1.5GiB`) in job
/// files and on the command line, encoded as the number of bytes.
public struct ByteCount: Codable, Sendable, Hashable {
    public var bytes: Int

    public init(bytes: Int) { self.bytes = bytes }

    /// Nil when `text` is not a size.
    public init?(text: String) {
        guard let bytes = parseByteCount(text) else { return nil }
        self.bytes = bytes
    }

    public init(from decoder: Decoder) throws {
        let value = try decoder.singleValueContainer()
        if let number = try? value.decode(Int.self), number >= 0 {
            bytes = number
            return
        }
        guard let text = try? value.decode(String.self), let parsed = parseByteCount(text) else {
            throw DecodingError.dataCorruptedError(in: value, debugDescription: "must be a size such as 512M or 4G")
        }
        bytes = parsed
    }

    public func encode(to encoder: Encoder) throws {
        var value = encoder.singleValueContainer()
        try value.encode(bytes)
    }
}

/// Parses sizes such as `512M`, `2G`, `1.5GiB`, `1000000` (bytes).
public func parseByteCount(_ text: String) -> Int? {
    let trimmed = text.trimmingCharacters(in: .whitespaces).uppercased()
    let suffixes: [(String, Double)] = [
        ("TIB", 1_099_511_627_776), ("GIB", 1_073_741_824), ("MIB", 1_048_576), ("KIB", 1024),
        ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3),
        ("T", 1_099_511_627_776), ("G", 1_073_741_824), ("M", 1_048_576), ("K", 1024), ("B", 1),
    ]
    for (suffix, scale) in suffixes where trimmed.hasSuffix(suffix) {
        guard let number = Double(trimmed.dropLast(suffix.count)), number >= 0 else { return nil }
        let bytes = number * scale
        guard bytes.isFinite, bytes < 9.0e18 else { return nil }  // beyond Int: refused, not a crash
        return Int(bytes)
    }
    return Int(trimmed).flatMap { $0 >= 0 ? $0 : nil }
}
