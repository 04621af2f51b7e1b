import Foundation

/// The recall-vs-QPS picture of an evaluation, as SVG: recall on x (linear), queries per second
/// on y (log scale), one line per index configuration (points in nprobe order), Pareto points
/// ringed. Elements carry classes (`axis`, `series`, `point`, `pareto`, `legend`) so tests and
/// tools can read the structure.
public enum RecallQPSPlot {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    public static func svg(_ report: EvaluationReport) -> String {
        let width = 760.0, height = 480.0
        let left = 80.0, right = 200.0, top = 50.0, bottom = 60.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom

        let points = report.rows.filter { $0.qps > 0 && $0.qps.isFinite }
        let minRecall = max(0, ((points.map(\.recall).min() ?? 0) * 10).rounded(.down) / 10)
        let xRange = (minRecall, 1.0)
        let logs = points.map { log10($0.qps) }
        var yLow = (logs.min() ?? 0).rounded(.down), yHigh = (logs.max() ?? 1).rounded(.up)
        if yHigh <= yLow { yHigh = yLow + 1 }
        if yLow == logs.min() { yLow -= 0 }
        func x(_ recall: Double) -> Double { left + (recall - xRange.0) / max(xRange.1 - xRange.0, 1e-9) * plotWidth }
        func y(_ qps: Double) -> Double { top + (yHigh - log10(qps)) / (yHigh - yLow) * plotHeight }
        func f(_ value: Double) -> String { String(format: "%.1f", value) }
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }

        var svg: [String] = [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text class=\"title\" x=\"\(f(left + plotWidth / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">\(escape("Recall vs queries per second: \(report.dataset), k = \(report.k), \(report.metric)"))</text>",
        ]
        // Grid and ticks.
        var tick = xRange.0
        while tick <= 1.0001 {
            svg.append("<line class=\"grid\" x1=\"\(f(x(tick)))\" y1=\"\(f(top))\" x2=\"\(f(x(tick)))\" y2=\"\(f(top + plotHeight))\" stroke=\"#e5e5e5\"/>")
            svg.append("<text class=\"tick\" x=\"\(f(x(tick)))\" y=\"\(f(top + plotHeight + 18))\" text-anchor=\"middle\">\(String(format: "%.1f", tick))</text>")
            tick += 0.1
        }
        for power in Int(yLow)...Int(yHigh) {
            let value = pow(10, Double(power))
            svg.append("<line class=\"grid\" x1=\"\(f(left))\" y1=\"\(f(y(value)))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(y(value)))\" stroke=\"#e5e5e5\"/>")
            svg.append("<text class=\"tick\" x=\"\(f(left - 8))\" y=\"\(f(y(value) + 4))\" text-anchor=\"end\">\(power >= 3 ? "1e\(power)" : String(Int(value)))</text>")
        }
        svg.append("<line class=\"axis\" id=\"x-axis\" x1=\"\(f(left))\" y1=\"\(f(top + plotHeight))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(top + plotHeight))\" stroke=\"black\"/>")
        svg.append("<line class=\"axis\" id=\"y-axis\" x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotHeight))\" stroke=\"black\"/>")
        svg.append("<text class=\"axis-label\" id=\"x-label\" x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 16))\" text-anchor=\"middle\">Recall@\(report.k) (k-nn recall, ann-benchmarks definition)</text>")
        svg.append("<text class=\"axis-label\" id=\"y-label\" transform=\"translate(20 \(f(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">Queries per second (log scale)</text>")

        // One series per configuration, in the order they first appear.
        let naming = Set(points.map(\.index).filter { !$0.isEmpty }).count > 1
        func label(_ row: EvaluationRow) -> String { Self.label(row, naming: naming) }
        var configurations: [String] = []
        for row in points where !configurations.contains(label(row)) { configurations.append(label(row)) }
        for (number, configuration) in configurations.enumerated() {
            let color = palette[number % palette.count]
            let series = points.filter { label($0) == configuration }.sorted { $0.recall < $1.recall }
            let path = series.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(f(x($0.element.recall))),\(f(y($0.element.qps)))" }.joined(separator: " ")
            svg.append("<path class=\"series\" data-name=\"\(escape(configuration))\" d=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>")
            for row in series {
                svg.append("<circle class=\"point\" cx=\"\(f(x(row.recall)))\" cy=\"\(f(y(row.qps)))\" r=\"3.5\" fill=\"\(color)\"><title>\(escape(configuration)) nprobe=\(row.nprobe): recall \(String(format: "%.4f", row.recall)), \(Int(row.qps)) QPS</title></circle>")
                if row.pareto {
                    svg.append("<circle class=\"pareto\" cx=\"\(f(x(row.recall)))\" cy=\"\(f(y(row.qps)))\" r=\"7\" fill=\"none\" stroke=\"black\" stroke-width=\"1.2\"/>")
                }
            }
            let legendY = top + 10 + Double(number) * 20
            svg.append("<g class=\"legend\"><line x1=\"\(f(left + plotWidth + 16))\" y1=\"\(f(legendY))\" x2=\"\(f(left + plotWidth + 40))\" y2=\"\(f(legendY))\" stroke=\"\(color)\" stroke-width=\"2\"/><text x=\"\(f(left + plotWidth + 46))\" y=\"\(f(legendY + 4))\">\(escape(configuration))</text></g>")
        }
        let paretoY = top + 10 + Double(configurations.count) * 20
        svg.append("<g class=\"legend\"><circle cx=\"\(f(left + plotWidth + 28))\" cy=\"\(f(paretoY))\" r=\"7\" fill=\"none\" stroke=\"black\"/><text x=\"\(f(left + plotWidth + 46))\" y=\"\(f(paretoY + 4))\">Pareto frontier</text></g>")
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    /// The configuration a row belongs to: the index family (with its settings when the sweep
    /// holds several indexes) and its search mode, without the dial the line sweeps (nprobe,
    /// ef, probes, search_k; refine for LSH's Hamming ranking).
    static func label(_ row: EvaluationRow, naming: Bool) -> String {
        switch row.algorithm {
        case "simjob-exact": return "exact search"
        case "simjob-ivfpq":
            return (naming ? row.name.replacingOccurrences(of: "+refine", with: "") : "IVF-PQ") + (row.refine > 0 ? ", refine \(row.refine)" : "")
        case "simjob-lsh": return (naming ? row.name : "LSH") + (row.probes > 0 ? ", multi-probe" : ", Hamming ranking")
        case "simjob-rptrees": return naming ? row.name : "RP-trees"
        case "simjob-hnsw": return naming ? row.name : "HNSW"
        case "simjob-ivfflat": return naming ? row.name : "IVF-Flat"
        default: return row.name
        }
    }
}
