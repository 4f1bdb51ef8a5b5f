import Foundation

/// Small, dependency-free SVG charts for the report page: each returns one `<svg>` element
/// with a `data-chart` name (the browser test counts them).
enum SVGChart {
    static let width = 640.0
    static let height = 300.0
    static let margin = (left: 64.0, right: 16.0, top: 16.0, bottom: 40.0)

    struct Series {
        var name: String
        var color: String
        var points: [(Double, Double)]
    }

    /// Lines over a shared x axis.
    static func lines(_ name: String, _ series: [Series], xLabel: String, yLabel: String, logY: Bool = false) -> String {
        let all = series.flatMap(\.points).filter { $0.0.isFinite && $0.1.isFinite && (!logY || $0.1 > 0) }
        guard !all.isEmpty else { return empty(name) }
        let scale = Scale(
            x: (all.map(\.0).min()!, all.map(\.0).max()!), y: (all.map(\.1).min()!, all.map(\.1).max()!), logX: false, logY: logY)
        var body = axes(scale, xLabel: xLabel, yLabel: yLabel)
        for s in series {
            let path = s.points.filter { $0.0.isFinite && $0.1.isFinite && (!logY || $0.1 > 0) }
                .map { "\(f(scale.px($0.0))),\(f(scale.py($0.1)))" }.joined(separator: " ")
            body += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"1.5\" points=\"\(path)\"/>"
        }
        body += legend(series.map { ($0.name, $0.color) })
        return svg(name, body)
    }

    /// A scatter plot; `diagonal` draws y = x.
    static func scatter(_ name: String, _ series: [Series], xLabel: String, yLabel: String, log: Bool, diagonal: Bool) -> String {
        let all = series.flatMap(\.points).filter { $0.0.isFinite && $0.1.isFinite && (!log || ($0.0 > 0 && $0.1 > 0)) }
        guard !all.isEmpty else { return empty(name) }
        var lo = min(all.map(\.0).min()!, diagonal ? all.map(\.1).min()! : .infinity)
        var hi = max(all.map(\.0).max()!, diagonal ? all.map(\.1).max()! : -.infinity)
        if !diagonal { lo = all.map(\.0).min()!; hi = all.map(\.0).max()! }
        let ys = diagonal ? (lo, hi) : (all.map(\.1).min()!, all.map(\.1).max()!)
        let scale = Scale(x: (lo, hi), y: ys, logX: log, logY: log)
        var body = axes(scale, xLabel: xLabel, yLabel: yLabel)
        if diagonal {
            body += "<line x1=\"\(f(scale.px(lo)))\" y1=\"\(f(scale.py(lo)))\" x2=\"\(f(scale.px(hi)))\" y2=\"\(f(scale.py(hi)))\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>"
        }
        for s in series {
            for p in s.points where p.0.isFinite && p.1.isFinite && (!log || (p.0 > 0 && p.1 > 0)) {
                body += "<circle cx=\"\(f(scale.px(p.0)))\" cy=\"\(f(scale.py(p.1)))\" r=\"2\" fill=\"\(s.color)\" fill-opacity=\"0.6\"/>"
            }
        }
        body += legend(series.map { ($0.name, $0.color) })
        return svg(name, body)
    }

    /// Vertical bars, one group per label, one bar per series; `reference` draws a dashed line.
    static func bars(_ name: String, labels: [String], series: [Series], yLabel: String, reference: Double? = nil) -> String {
        let values = series.flatMap { $0.points.map(\.1) }.filter(\.isFinite) + (reference.map { [$0] } ?? [])
        guard !labels.isEmpty, let top = values.max() else { return empty(name) }
        let scale = Scale(x: (0, Double(labels.count)), y: (0, max(top, 1e-12) * 1.1), logX: false, logY: false)
        var body = axes(scale, xLabel: "", yLabel: yLabel, xTicks: false)
        let groupWidth = (width - margin.left - margin.right) / Double(labels.count)
        let barWidth = groupWidth * 0.8 / Double(max(series.count, 1))
        for (i, label) in labels.enumerated() {
            let x0 = margin.left + Double(i) * groupWidth + groupWidth * 0.1
            for (k, s) in series.enumerated() where i < s.points.count {
                let v = s.points[i].1
                guard v.isFinite else { continue }
                let y = scale.py(v)
                body += "<rect x=\"\(f(x0 + Double(k) * barWidth))\" y=\"\(f(y))\" width=\"\(f(barWidth - 1))\" height=\"\(f(height - margin.bottom - y))\" fill=\"\(s.color)\"><title>\(escape(label)): \(f(v))</title></rect>"
            }
            body += "<text x=\"\(f(x0 + groupWidth * 0.4))\" y=\"\(f(height - margin.bottom + 14))\" font-size=\"10\" text-anchor=\"middle\">\(escape(label))</text>"
        }
        if let reference {
            let y = scale.py(reference)
            body += "<line x1=\"\(f(margin.left))\" y1=\"\(f(y))\" x2=\"\(f(width - margin.right))\" y2=\"\(f(y))\" stroke=\"#c00\" stroke-dasharray=\"5 3\"/>"
        }
        body += legend(series.map { ($0.name, $0.color) })
        return svg(name, body)
    }

    /// Horizontal bars with labels (feature importance).
    static func horizontalBars(_ name: String, _ items: [(String, Double)], valueSuffix: String) -> String {
        guard let top = items.map(\.1).max(), top > 0 else { return empty(name) }
        let rowHeight = 24.0
        let h = Double(items.count) * rowHeight + 20
        var body = ""
        for (i, item) in items.enumerated() {
            let y = 10 + Double(i) * rowHeight
            let w = (width - 200) * item.1 / top
            body += "<text x=\"110\" y=\"\(f(y + 15))\" font-size=\"12\" text-anchor=\"end\">\(escape(item.0))</text>"
            body += "<rect x=\"120\" y=\"\(f(y + 3))\" width=\"\(f(w))\" height=\"16\" fill=\"#4477aa\"/>"
            body += "<text x=\"\(f(125 + w))\" y=\"\(f(y + 15))\" font-size=\"11\">\(f(item.1))\(valueSuffix)</text>"
        }
        return "<svg data-chart=\"\(name)\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(h))\" viewBox=\"0 0 \(f(width)) \(f(h))\">\(body)</svg>"
    }

    // MARK: Pieces

    struct Scale {
        var x: (Double, Double)
        var y: (Double, Double)
        var logX: Bool
        var logY: Bool

        func t(_ v: Double, _ r: (Double, Double), _ log: Bool) -> Double {
            let (a, b) = log ? (Foundation.log10(r.0), Foundation.log10(r.1)) : r
            let value = log ? Foundation.log10(v) : v
            return b > a ? (value - a) / (b - a) : 0.5
        }
        func px(_ v: Double) -> Double { margin.left + t(v, x, logX) * (width - margin.left - margin.right) }
        func py(_ v: Double) -> Double { height - margin.bottom - t(v, y, logY) * (height - margin.top - margin.bottom) }
    }

    static func axes(_ s: Scale, xLabel: String, yLabel: String, xTicks: Bool = true) -> String {
        var out = "<rect x=\"\(f(margin.left))\" y=\"\(f(margin.top))\" width=\"\(f(width - margin.left - margin.right))\" height=\"\(f(height - margin.top - margin.bottom))\" fill=\"none\" stroke=\"#ccc\"/>"
        for k in 0...4 {
            let fy = Double(k) / 4
            let v = s.logY ? pow(10, log10(s.y.0) + fy * (log10(s.y.1) - log10(s.y.0))) : s.y.0 + fy * (s.y.1 - s.y.0)
            out += "<text x=\"\(f(margin.left - 6))\" y=\"\(f(s.py(v) + 4))\" font-size=\"10\" text-anchor=\"end\">\(tick(v))</text>"
            if xTicks {
                let xv = s.logX ? pow(10, log10(s.x.0) + fy * (log10(s.x.1) - log10(s.x.0))) : s.x.0 + fy * (s.x.1 - s.x.0)
                out += "<text x=\"\(f(s.px(xv)))\" y=\"\(f(height - margin.bottom + 14))\" font-size=\"10\" text-anchor=\"middle\">\(tick(xv))</text>"
            }
        }
        out += "<text x=\"\(f((width + margin.left) / 2))\" y=\"\(f(height - 6))\" font-size=\"11\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        out += "<text x=\"14\" y=\"\(f(height / 2))\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(f(height / 2)))\">\(escape(yLabel))</text>"
        return out
    }

    static func legend(_ items: [(String, String)]) -> String {
        var out = ""
        for (i, item) in items.enumerated() {
            let x = margin.left + 10 + Double(i) * 150
            out += "<rect x=\"\(f(x))\" y=\"\(f(margin.top + 6))\" width=\"10\" height=\"10\" fill=\"\(item.1)\"/>"
            out += "<text x=\"\(f(x + 14))\" y=\"\(f(margin.top + 15))\" font-size=\"11\">\(escape(item.0))</text>"
        }
        return out
    }

    static func svg(_ name: String, _ body: String) -> String {
        "<svg data-chart=\"\(name)\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\">\(body)</svg>"
    }

    static func empty(_ name: String) -> String {
        svg(name, "<text x=\"\(f(width / 2))\" y=\"\(f(height / 2))\" text-anchor=\"middle\" font-size=\"12\" fill=\"#888\">no data</text>")
    }

    static func tick(_ v: Double) -> String {
        let a = abs(v)
        if a >= 10000 { return String(format: "%.0fk", v / 1000) }
        if a >= 100 { return String(format: "%.0f", v) }
        if a >= 1 { return String(format: "%.2f", v) }
        return String(format: "%.3g", v)
    }

    static func f(_ v: Double) -> String { String(format: "%.2f", v) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
