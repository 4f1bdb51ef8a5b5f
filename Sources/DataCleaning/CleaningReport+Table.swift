extension CleaningReport {
    /// The report as an aligned plain-text table, for people:
    ///
    ///     rows in              53940
    ///     clean rows           53723
    ///     ...
    ///     rule                 checked  failed  requires
    ///     parse                  53940       0  well-formed record; ...
    ///
    /// followed by the sample failing rows of each rule that failed any.
    public func table() -> String {
        var lines: [String] = []
        let counts: [(String, String)] = [
            ("rows in", String(rowsIn)),
            ("clean rows", String(cleanRows)),
            ("quarantined rows", String(quarantinedRows)),
            ("empty lines skipped", String(emptyLinesSkipped)),
        ]
        let countWidth = counts.map(\.1.count).max() ?? 0
        for (label, value) in counts {
            lines.append(Self.pad(label, 21) + Self.padLeft(value, countWidth))
        }
        lines.append(Self.pad("extra columns", 21) + (extraColumns.isEmpty ? "(none)" : extraColumns.joined(separator: ", ")))
        lines.append("")

        let idWidth = max(4, rules.map(\.rule.id.count).max() ?? 0) + 2
        let numberWidth = max(7, rules.map { String($0.checked).count }.max() ?? 0)
        lines.append(Self.pad("rule", idWidth) + Self.padLeft("checked", numberWidth) + "  "
            + Self.padLeft("failed", numberWidth) + "  requires")
        for outcome in rules {
            let checked = outcome.enabled ? String(outcome.checked) : "off"
            lines.append(Self.pad(outcome.rule.id, idWidth) + Self.padLeft(checked, numberWidth) + "  "
                + Self.padLeft(String(outcome.failed), numberWidth) + "  " + outcome.rule.summary)
        }

        let failing = rules.filter { !$0.samples.isEmpty }
        if !failing.isEmpty {
            lines.append("")
            lines.append("first failing rows")
            for outcome in failing {
                for (i, sample) in outcome.samples.enumerated() {
                    let label = i == 0 ? outcome.rule.id : ""
                    lines.append(Self.pad(label, idWidth) + sample.message)
                }
                if outcome.failed > outcome.samples.count {
                    lines.append(Self.pad("", idWidth) + "… and \(outcome.failed - outcome.samples.count) more")
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    private static func padLeft(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}
