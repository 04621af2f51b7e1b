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
