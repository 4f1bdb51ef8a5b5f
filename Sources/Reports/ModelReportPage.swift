import ArtifactStore
import Catalog
import DataCleaning
import Foundation
import HyperTuning
import Retraining
import TreeTraining

/// The training report of one model version as a self-contained HTML page: inline CSS and
/// SVG, no scripts or fonts from the network. Sections: metrics and parameters, learning
/// curves, predicted vs actual, residuals and range coverage by price decile, feature
/// importance, the cleaning of its dataset, the tuning history and the champion/challenger
/// comparison (when a tuning run or a retrain made it).
public struct ModelReportPage: Sendable {
    public let catalog: Catalog

    public init(catalog: Catalog) {
        self.catalog = catalog
    }

    /// The record kind pages are attached to: `records/pages/<model>-<version>.json`.
    public static let recordKind = "pages"

    /// The page for a version: the stored one, else rendered now and stored with the model.
    public func page(for manifest: ModelManifest) throws -> String {
        let id = "\(manifest.name)-\(manifest.version)"
        if let stored = try catalog.store.attachment(kind: Self.recordKind, id: id) {
            return String(decoding: stored, as: UTF8.self)
        }
        let html = try render(manifest)
        try catalog.store.attach(
            kind: Self.recordKind, id: id, bytes: Array(html.utf8),
            fields: ["model": manifest.name, "version": "\(manifest.version)"])
        return html
    }

    /// The page of `model` at `version` as a URL names it ("" = production, else newest; a
    /// number = that version); nil when there is no such version or it cannot be rendered.
    public func page(model: String, version: String) -> String? {
        let spec = version.isEmpty ? ModelSpec(name: model) : Int(version).map { ModelSpec(name: model, selector: .version($0)) }
        guard let spec, let manifest = try? catalog.manifest(for: spec) else { return nil }
        return try? page(for: manifest)
    }

    /// Renders the page (without storing it).
    public func render(_ m: ModelManifest) throws -> String {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let report = try m.reportBlob.map { try decoder.decode(TrainingReport.self, from: Data(try catalog.store.readBlob($0))) }
        let aliases = (try? catalog.store.aliases(name: m.name)) ?? AliasRecord()
        let dataset = try? catalog.store.dataset(name: m.dataset.name, version: m.dataset.version)
        let ingest = dataset?.reportBlob.flatMap { try? decoder.decode(IngestReport.self, from: Data(try catalog.store.readBlob($0))) }
        let outcome = catalog.retrainOutcome(model: m.name, version: m.version)
        let tuningID = outcome?.tuningRun ?? m.note.flatMap { note in
            note.hasPrefix("tuning run ") ? String(note.dropFirst("tuning run ".count)) : nil
        }
        let tuning = tuningID.flatMap { try? catalog.tuningRun($0) }

        var sections: [String] = []
        var charts: [String] = []
        let tags = ModelAlias.allCases.filter { aliases[$0] == m.version }.map(\.rawValue)
        sections.append("""
            <h1>\(e(m.name)) v\(m.version)\(tags.isEmpty ? "" : " <small>(\(tags.joined(separator: ", ")))</small>")</h1>
            <p>Registered \(e(Self.date(m.created))) UTC, trained on dataset <b>\(e(m.dataset.description))</b>\
            \(m.parent.map { ", after v\($0)" } ?? "")\(m.note.map { ". " + e($0) } ?? "").
            Model blob <code>\(e(m.modelBlob.description))</code>.</p>
            """)
        if let report {
            sections.append(metricsSection(report))
            charts.append("learning-curves")
            sections.append(section("Learning curves", """
                <p>RMSE on the training target's scale (log price) after each round; \(report.bestRound) trees kept of \
                \(report.roundsTrained) trained.</p>
                """ + SVGChart.lines("learning-curves", [
                    .init(name: "train", color: "#4477aa", points: report.trainLossCurve.enumerated().map { (Double($0 + 1), $1) }),
                    .init(name: "validation", color: "#ee6677", points: report.validationLossCurve.enumerated().map { (Double($0 + 1), $1) }),
                ], xLabel: "round", yLabel: "RMSE (log price)", logY: true)))
            let points = report.holdoutPoints ?? []
            charts.append("predicted-vs-actual")
            sections.append(section("Predicted vs actual", """
                <p>\(points.count) holdout rows (never trained on), log scales; orange rows fell outside their range.</p>
                """ + SVGChart.scatter("predicted-vs-actual", [
                    .init(name: "inside the range", color: "#4477aa",
                          points: points.filter { $0.actual >= $0.low && $0.actual <= $0.high }.map { ($0.actual, $0.price) }),
                    .init(name: "outside", color: "#ee7733",
                          points: points.filter { $0.actual < $0.low || $0.actual > $0.high }.map { ($0.actual, $0.price) }),
                ], xLabel: "actual price ($)", yLabel: "predicted price ($)", log: true, diagonal: true)))
            if let holdout = report.holdout, !holdout.deciles.isEmpty {
                let labels = holdout.deciles.map { "\($0.decile)" }
                charts.append("error-by-decile")
                charts.append("coverage-by-decile")
                sections.append(section("By price decile", SVGChart.bars(
                    "error-by-decile", labels: labels,
                    series: [.init(name: "MAPE %", color: "#4477aa", points: holdout.deciles.map { (0, $0.metrics.mape) })],
                    yLabel: "MAPE (%)")
                    + SVGChart.bars(
                        "coverage-by-decile", labels: labels,
                        series: [.init(name: "coverage %", color: "#228833",
                                       points: holdout.deciles.map { (0, ($0.ranges?.coverage ?? .nan) * 100) })],
                        yLabel: "range coverage (%)", reference: (holdout.ranges?.level ?? 0.9) * 100)
                    + decileTable(holdout)))
            }
            charts.append("feature-importance")
            sections.append(section("Feature importance", "<p>Share of the total split gain. (Mean |TreeSHAP| per feature joins this chart once the server computes reasons.)</p>"
                + SVGChart.horizontalBars("feature-importance",
                    report.importance.sorted { $0.gainShare > $1.gainShare }.map { ($0.feature, $0.gainShare * 100) },
                    valueSuffix: "%")))
        } else {
            sections.append(section("Training", "<p>No training report was stored with this version (imported?).</p>"))
        }
        sections.append(cleaningSection(ingest, dataset: dataset))
        if let tuning {
            charts.append("tuning-history")
            sections.append(tuningSection(tuning))
        }
        if let outcome { sections.append(retrainSection(outcome)) }
        return page(title: "\(m.name) v\(m.version) — Loupe training report", body: sections.joined(separator: "\n"),
                    charts: charts)
    }

    // MARK: Sections

    private func metricsSection(_ r: TrainingReport) -> String {
        var rows = ""
        if let h = r.holdout {
            rows += row("RMSE", "$" + n(h.metrics.rmse, 1)) + row("MAE", "$" + n(h.metrics.mae, 1))
                + row("MAPE", n(h.metrics.mape, 2) + "%") + row("R²", n(h.metrics.r2, 4))
            if let ranges = h.ranges {
                rows += row("\(n(ranges.level * 100, 0))% range coverage", n(ranges.coverage * 100, 1) + "%")
                    + row("median range width", n(ranges.medianRelativeWidth * 100, 1) + "% of price")
            }
            rows += row("holdout rows", "\(h.metrics.rows)")
        }
        rows += row("rows", "\(r.rows.train) train, \(r.rows.validation) validation, \(r.rows.calibration) calibration")
        rows += row("training time", n(r.totalSeconds, 2) + " s")
        let c = r.configuration
        let params = [("rounds", "\(c.rounds)"), ("learning_rate", n(c.learningRate, 4)), ("num_leaves", "\(c.numLeaves)"),
                      ("max_depth", "\(c.maxDepth)"), ("min_data_in_leaf", "\(c.minDataInLeaf)"),
                      ("lambda_l2", n(c.lambdaL2, 4)), ("min_gain_to_split", "\(c.minGainToSplit)"),
                      ("feature_fraction", n(c.featureFraction, 3)), ("bagging_fraction", n(c.baggingFraction, 3)),
                      ("max_bin", "\(c.maxBin)"), ("early_stopping", "\(c.earlyStoppingRounds)"),
                      ("target", c.target.name), ("seed", "\(c.seed)")]
        return section("Holdout metrics and parameters", """
            <div class="cols"><table>\(rows)</table><table>\(params.map { row($0.0, $0.1) }.joined())</table></div>
            """)
    }

    private func decileTable(_ h: EvaluationReport) -> String {
        var out = "<table><tr><th>decile</th><th>prices</th><th>RMSE</th><th>MAE</th><th>MAPE</th><th>coverage</th></tr>"
        for d in h.deciles {
            out += "<tr><td>\(d.decile)</td><td>$\(n(d.minPrice, 0))–\(n(d.maxPrice, 0))</td><td>\(n(d.metrics.rmse, 1))</td>"
                + "<td>\(n(d.metrics.mae, 1))</td><td>\(n(d.metrics.mape, 2))%</td>"
                + "<td>\(d.ranges.map { n($0.coverage * 100, 1) + "%" } ?? "-")</td></tr>"
        }
        return out + "</table>"
    }

    private func cleaningSection(_ ingest: IngestReport?, dataset: DatasetManifest?) -> String {
        guard let ingest, let dataset else {
            return section("Cleaning", "<p>No cleaning report is stored for the dataset.</p>")
        }
        var out = "<p>Dataset \(e(dataset.name)) v\(dataset.version) from <code>\(e(ingest.source))</code>: "
            + "\(dataset.counts.rowsIn) rows in, \(dataset.counts.clean) clean, \(dataset.counts.quarantined) quarantined"
        if let parent = ingest.appendedTo {
            out += " (appended to v\(parent); \(ingest.duplicatesOfEarlierRows) rows were already there)"
        }
        out += ".</p><table><tr><th>rule</th><th>checked</th><th>failed</th><th>first failures</th></tr>"
        for rule in ingest.cleaning.rules where rule.enabled {
            out += "<tr><td>\(e(rule.rule.id))</td><td>\(rule.checked)</td><td>\(rule.failed)</td><td>"
                + rule.samples.prefix(3).map { e($0.message) }.joined(separator: "<br>") + "</td></tr>"
        }
        return section("Cleaning", out + "</table>")
    }

    private func tuningSection(_ run: TuningRun) -> String {
        var best = Double.infinity
        var bestLine: [(Double, Double)] = []
        for t in run.trials {
            if let r = t.rmse { best = min(best, r) }
            if best.isFinite { bestLine.append((Double(t.number), best)) }
        }
        let chart = SVGChart.lines("tuning-history", [
            .init(name: "completed", color: "#4477aa",
                  points: run.trials.filter { $0.state == .completed }.compactMap { t in t.rmse.map { (Double(t.number), $0) } }),
            .init(name: "pruned", color: "#bbbbbb",
                  points: run.trials.filter { $0.state == .pruned }.compactMap { t in t.rmse.map { (Double(t.number), $0) } }),
            .init(name: "best so far", color: "#ee6677", points: bestLine),
        ], xLabel: "trial", yLabel: "validation RMSE ($)")
        let counts = Dictionary(grouping: run.trials, by: \.state).mapValues(\.count)
        var finalFit = ""
        if let f = run.final {
            let polish = f.learningRate < f.searchedLearningRate
                ? "polishing at learning rate \(n(f.learningRate, 4)) validated better ($\(n(f.validationRMSE, 2)) at \(f.bestRound) rounds)"
                : "polishing at a smaller learning rate did not validate better"
                    + (f.polishedRMSE.map { " ($\(n($0, 2)))" } ?? "") + "; the searched rate \(n(f.searchedLearningRate, 4)) was kept"
            let finished = f.finishedRMSE.map { "the best trial, pruned by the search, was trained on to early stopping ($\(n($0, 2))); " } ?? ""
            let finalists = f.finalistRMSE.map { r in
                "the \(r.count) best trials were trained again on a second split and trial \(f.trial.map(String.init) ?? "-") "
                    + "fitted (the lowest mean validation RMSE over both splits); "
            } ?? ""
            finalFit = "<p>Final fit: \(finalists)\(finished)\(polish); the model trained \(f.rounds) rounds on every row but the calibration slice.</p>"
        }
        return section("Tuning history", """
            <p>Run <code>\(e(run.id))</code>: \(run.trials.count) trials (\(counts[.completed] ?? 0) completed, \
            \(counts[.pruned] ?? 0) pruned, \(counts[.failed] ?? 0) failed), \(e(run.stopReason ?? "")).</p>
            """ + finalFit + chart)
    }

    private func retrainSection(_ o: RetrainOutcome) -> String {
        let comparison = switch o.comparison {
        case .noChampion: "there was no production model"
        case .freshRows: "on \(o.holdoutRows) rows added since production's dataset, which neither model trained on"
        case .refit: "on \(o.holdoutRows) held-out rows, against production's parameters refitted on the same training rows"
        }
        var rows = row("challenger", "v\(o.challengerVersion.map(String.init) ?? "-"): $" + n(o.challengerRMSE ?? .nan, 2))
        if let champion = o.championVersion, let rmse = o.championRMSE { rows += row("champion", "v\(champion): $" + n(rmse, 2)) }
        if let used = o.newTrainingRows { rows += row("new rows trained on", "\(used)") }
        if let version = o.referenceVersion, let mine = o.challengerReferenceRMSE, let theirs = o.championReferenceRMSE {
            rows += row("reference set", "v\(version), \(o.referenceRows ?? 0) rows no version trains on: challenger $"
                + n(mine, 2) + ", champion $" + n(theirs, 2))
        }
        if let outliers = o.labelOutlierCount, outliers > 0 {
            rows += row("label outliers set aside", "\(outliers)" + (o.labelOutliers?.first.map { " (e.g. " + e($0.reason) + ")" } ?? ""))
        }
        if let accepted = o.accepted, !accepted.isEmpty { rows += row("guardrails overridden", e(accepted.joined(separator: ", "))) }
        rows += row("decision", (o.promoted ? "promoted — " : "kept the champion — ") + e(o.reason))
        return section("Champion vs challenger", "<p>Holdout RMSE \(comparison).</p><table>\(rows)</table>")
    }

    // MARK: HTML

    private func page(title: String, body: String, charts: [String]) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(e(title))</title>
        <style>
        body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}
        h1 small{font-weight:normal;color:#666} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
        table{border-collapse:collapse;margin:.5em 1em .5em 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
        .cols{display:flex;flex-wrap:wrap} svg{display:block;margin:.5em 0} code{font-size:12px}
        </style></head>
        <body data-charts="\(charts.joined(separator: " "))">
        \(body)
        <p style="color:#888;font-size:12px">Generated by \(e("loupe")) from the artifact store; this page needs no network.</p>
        <script>
        // Self-check for the browser test: every chart the page promises is drawn, no error happened.
        (function(){var errors=[];window.addEventListener('error',function(e){errors.push(String(e.message));
        document.documentElement.setAttribute('data-errors',errors.join('|'));});
        var want=(document.body.getAttribute('data-charts')||'').split(' ').filter(Boolean);
        var missing=want.filter(function(n){var s=document.querySelector('svg[data-chart="'+n+'"]');
        return !s||!s.getBBox||s.getBBox().width<=0;});
        document.documentElement.setAttribute('data-check',missing.length?('missing:'+missing.join(',')):'ok');})();
        </script>
        </body></html>
        """
    }

    private func section(_ title: String, _ body: String) -> String { "<h2>\(e(title))</h2>\n\(body)" }
    private func row(_ k: String, _ v: String) -> String { "<tr><th>\(e(k))</th><td>\(v)</td></tr>" }
    private func e(_ s: String) -> String { SVGChart.escape(s) }
    private func n(_ v: Double, _ d: Int) -> String { v.isFinite ? String(format: "%.\(d)f", v) : "-" }

    static func date(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
        return f.string(from: d)
    }
}
