import AviaryCore
import Foundation

/// How the dashboard writes numbers (docs/dashboard.md, "Numbers"): the report's values rounded
/// for reading, never recomputed.
enum DashboardFormat {
    /// Four significant digits ("3.791", "0.01234", "12 350"); "—" for none.
    static func number(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "—" }
        if value == 0 { return "0" }
        let magnitude = Int(floor(log10(abs(value))))
        let decimals = max(0, 3 - magnitude)
        let rounded = (value * pow(10, Double(decimals))).rounded() / pow(10, Double(decimals))
        return String(format: "%.\(decimals)f", rounded)
    }

    /// A share as a percent with one decimal ("+3.1 %", "−0.4 %").
    static func percent(_ share: Double?, signed: Bool = false) -> String {
        guard let share, share.isFinite else { return "—" }
        let text = String(format: "%.1f", abs(share * 100))
        guard signed else { return (share < 0 ? "−" : "") + text + " %" }
        return (share < 0 ? "−" : "+") + text + " %"
    }

    /// A p-value with three significant digits, "< 0.0001" below that.
    static func pValue(_ p: Double?) -> String {
        guard let p, p.isFinite else { return "—" }
        if p < 0.0001 { return "< 0.0001" }
        return String(format: "%.3g", p)
    }

    /// A weight in hundredths of a percent as "25 %", "12.5 %".
    static func weight(_ hundredths: Int) -> String {
        let percent = Percent.toDouble(hundredths)
        return (percent == percent.rounded() ? String(Int(percent)) : String(percent)) + " %"
    }

    static func time(_ date: Date?) -> String {
        guard let date else { return "—" }
        return Timestamp.format(date).replacingOccurrences(of: "T", with: " ")
    }

    /// Text for XML: SVG is built here, so whatever came from events is escaped.
    static func xml(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}

/// A metric's chart: for each treatment group, its difference from the control with the 95 %
/// interval, on one axis through zero (the control). Inline SVG with a `<title>`, every value
/// also written beside its interval, and shapes that read without colour (a solid dot, a line).
enum IntervalChart {
    struct Row {
        var label: String
        var delta: Double
        var low: Double
        var high: Double
    }

    static func svg(title: String, rows: [Row]) -> String? {
        guard !rows.isEmpty else { return nil }
        let width = 700.0, labelWidth = 150.0, valueWidth = 250.0, rowHeight = 28.0
        let height = rowHeight * Double(rows.count) + 30
        let extent = max(rows.map { max(abs($0.low), abs($0.high), abs($0.delta)) }.max() ?? 1, 1e-12) * 1.1
        let plotLeft = labelWidth, plotWidth = width - labelWidth - valueWidth
        func x(_ v: Double) -> Double { plotLeft + (v + extent) / (2 * extent) * plotWidth }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 \(Int(width)) \(Int(height))" class="chart">\
            <title>\(DashboardFormat.xml(title))</title>\
            <line x1="\(x(0))" y1="4" x2="\(x(0))" y2="\(height - 22)" class="zero"/>\
            <text x="\(x(0))" y="\(height - 6)" text-anchor="middle" class="axis">control</text>
            """
        for (i, row) in rows.enumerated() {
            let y = 18 + rowHeight * Double(i)
            let label = DashboardFormat.xml(row.label)
            let value = "\(DashboardFormat.number(row.delta)) [\(DashboardFormat.number(row.low)), \(DashboardFormat.number(row.high))]"
            svg += """
                <g><title>\(label): \(value)</title>\
                <text x="\(labelWidth - 8)" y="\(y + 4)" text-anchor="end">\(label)</text>\
                <line x1="\(x(row.low))" y1="\(y)" x2="\(x(row.high))" y2="\(y)" class="interval"/>\
                <line x1="\(x(row.low))" y1="\(y - 6)" x2="\(x(row.low))" y2="\(y + 6)" class="interval"/>\
                <line x1="\(x(row.high))" y1="\(y - 6)" x2="\(x(row.high))" y2="\(y + 6)" class="interval"/>\
                <circle cx="\(x(row.delta))" cy="\(y)" r="5" class="estimate"/>\
                <text x="\(width - valueWidth + 8)" y="\(y + 4)">\(value)</text></g>
                """
        }
        return svg + "</svg>"
    }
}
