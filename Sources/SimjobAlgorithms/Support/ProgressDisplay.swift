import Foundation
import Logging
import Synchronization

/// ProgressDisplay of one long step: a bar with rate and ETA when stderr is a terminal, plain log lines
/// (about every 10 seconds) otherwise. Thread-safe: workers call `advance` as blocks finish.
public final class ProgressDisplay: Sendable {
    public enum Style: Sendable { case automatic, bar, lines, silent }

    private struct State {
        var done = 0
        var lastRender: Double = 0
        var finished = false
    }

    public let label: String
    public let total: Int
    public let unit: String
    /// Raw units per displayed unit: work counted in pairs can be shown as rows.
    public let scale: Double
    private let style: Style
    private let logger: Logger?
    private let started: Double
    private let state = Mutex(State())

    public init(_ label: String, total: Int, unit: String, scale: Double = 1, style: Style = .automatic, logger: Logger? = nil) {
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
        self.scale = scale
        self.logger = logger
        switch style {
        case .automatic: self.style = isatty(STDERR_FILENO) != 0 ? .bar : .lines
        default: self.style = style
        }
        started = ProgressDisplay.now()
        // Log lines start after the first interval; a bar shows at once.
        if self.style != .bar { state.withLock { $0.lastRender = started } }
    }

    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    public var elapsedSeconds: Double { ProgressDisplay.now() - started }

    /// Records `count` more units done.
    public func advance(by count: Int = 1) {
        let now = ProgressDisplay.now()
        let snapshot: Int? = state.withLock { state in
            state.done += count
            let interval = style == .bar ? 0.1 : 10.0
            guard !state.finished, now - state.lastRender >= interval else { return nil }
            state.lastRender = now
            return state.done
        }
        if let snapshot { render(done: snapshot, now: now, final: false) }
    }

    /// Ends the display with a final line.
    public func finish() {
        let done: Int? = state.withLock { state in
            guard !state.finished else { return nil }
            state.finished = true
            return state.done
        }
        if let done { render(done: done, now: ProgressDisplay.now(), final: true) }
    }

    private func render(done: Int, now: Double, final: Bool) {
        let elapsed = max(now - started, 1e-9)
        let rate = Double(done) / scale / elapsed
        let fraction = min(Double(done) / Double(total), 1)
        let rateText = "\(ProgressDisplay.compact(rate)) \(unit)/s"
        switch style {
        case .silent:
            return
        case .bar:
            let width = 28
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let tail = final ? "in \(ProgressDisplay.clock(elapsed))" : "ETA \(eta(done: done, rate: rate))"
            let line = String(format: "\r%@ [%@] %3d%% %@ %@\u{1B}[K", label, bar, Int(fraction * 100), rateText, tail)
            FileHandle.standardError.write(Data((line + (final ? "\n" : "")).utf8))
        case .lines, .automatic:
            let text = final
                ? "\(label): done \(shown(done)) \(unit) in \(ProgressDisplay.clock(elapsed)) (\(rateText))"
                : "\(label): \(Int(fraction * 100))% (\(shown(done))/\(shown(total)) \(unit), \(rateText), ETA \(eta(done: done, rate: rate)))"
            if let logger { logger.info("\(text)") } else { FileHandle.standardError.write(Data((text + "\n").utf8)) }
        }
    }

    private func shown(_ raw: Int) -> Int { Int((Double(raw) / scale).rounded()) }

    private func eta(done: Int, rate: Double) -> String {
        guard rate > 0, done > 0 else { return "--:--" }
        return ProgressDisplay.clock(Double(total - done) / scale / rate)
    }

    /// `m:ss` or `h:mm:ss`.
    static func clock(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        let (h, m, s) = (whole / 3600, whole / 60 % 60, whole % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
    }

    /// 1234567 -> "1.23M".
    static func compact(_ value: Double) -> String {
        switch value {
        case 1e9...: return String(format: "%.2fG", value / 1e9)
        case 1e6...: return String(format: "%.2fM", value / 1e6)
        case 1e3...: return String(format: "%.1fk", value / 1e3)
        default: return String(format: "%.0f", value)
        }
    }
}
