import ArgumentParser
import Catalog
import LoupeClient
import LoupeProtocol
import DataCleaning
import DiamondSchema
import TreeExplain
import TreeModel

struct PredictCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Price one diamond (from options) or every row of a CSV, with a calibrated range.",
        discussion: """
            Example:
              loupe predict model.loupe --carat 1.01 --cut Ideal --color G --clarity VS1 \\
                --depth 61.8 --table 56 --x 6.43 --y 6.47 --z 3.99
            """)

    @Argument(help: ArgumentHelp(stringLiteral: ModelArgument.help + " Default: the production model."))
    var model: ModelArgument?

    @OptionGroup var storeOptions: StoreOptions

    @OptionGroup var serverOptions: ServerOptions

    @Option(parsing: .unconditional, help: "Weight in carats.") var carat: Double?
    @Option(help: "Cut: \(Cut.levelList).") var cut: String?
    @Option(help: "Color: \(Color.levelList).") var color: String?
    @Option(help: "Clarity: \(Clarity.levelList).") var clarity: String?
    @Option(parsing: .unconditional, help: "Total depth percentage.") var depth: Double?
    @Option(parsing: .unconditional, help: "Table percentage.") var table: Double?
    @Option(parsing: .unconditional, help: "Length in mm.") var x: Double?
    @Option(parsing: .unconditional, help: "Width in mm.") var y: Double?
    @Option(parsing: .unconditional, help: "Depth in mm.") var z: Double?

    @Option(help: "Price every row of this CSV (a price column, if present, is ignored).")
    var csv: String?

    @Option(name: .shortAndLong, help: "With --csv: write the predictions here instead of stdout.")
    var out: String?

    @Option(parsing: .unconditional, help: "Coverage level of the range.")
    var level: Double = ConformalIntervals.defaultLevel

    @Flag(help: "Print JSON (single diamond).")
    var json = false

    @Flag(help: "Also give the reasons (single diamond): each feature's TreeSHAP contribution as a factor on the price and in dollars from the average diamond.")
    var explain = false

    func validate() throws {
        guard level > 0 && level < 1 else { throw ValidationError("--level must be between 0 and 1, got \(level)") }
        let given = [carat, depth, table, x, y, z].compactMap { $0 }.count + [cut, color, clarity].compactMap { $0 }.count
        if csv != nil && given > 0 { throw ValidationError("give either --csv or the diamond's options, not both") }
        if explain && csv != nil { throw ValidationError("--explain explains one diamond; it does not apply to --csv") }
        if csv == nil && given < 9 {
            throw ValidationError(
                "describe the diamond with all of --carat --cut --color --clarity --depth --table --x --y --z, or give --csv")
        }
    }

    func run() async throws {
        if let client = try await serverOptions.connect(store: storeOptions) {
            defer { Task { await client.close() } }
            try await predictRemotely(client)
            return
        }
        let ensemble = try loadModel(model ?? ModelArgument(argument: Catalog.defaultModel)!, store: storeOptions)
        if let csv {
            try predictFile(csv, model: ensemble)
            return
        }
        let diamond = try parsedDiamond()
        let estimate = ensemble.estimate(diamond, level: level)
        var reasons: PriceExplanation?
        if explain {
            let explainer: TreeExplainer
            do throws(ExplainError) { explainer = try TreeExplainer(ensemble) } catch { throw CLIError(error.message) }
            reasons = PriceExplanation(
                baseValue: explainer.baseValue, contributions: explainer.contributions(diamond.features),
                featureNames: ensemble.featureNames, target: ensemble.target)
        }
        if json {
            print(encodeJSON(PredictionJSON(estimate, reasons: reasons)))
        } else {
            print(describe(estimate))
            if let reasons { print(reasonsTable(reasons, diamond: diamond)) }
        }
    }

    /// The same answers through a running server (Predict, or BatchPredict in chunks).
    private func predictRemotely(_ client: LoupeClient) async throws {
        var selector: Loupe_V1_ModelSelector?
        if let model {
            guard case .store(let spec) = model.source else {
                throw CLIError("with --server, name a model in the server's store (diamonds@3), not a file")
            }
            var s = Loupe_V1_ModelSelector()
            s.name = spec.name
            switch spec.selector {
            case .version(let v): s.version = UInt32(v)
            case .alias(let a): s.alias = a.rawValue
            case .current: break
            }
            selector = s
        }
        if let csv {
            let batch = try DataSource.file(csv).clean(.pricing)
            var lines = ["row,price,low,high,level"]
            let limit = max(1, Int(client.welcome.limits.maxBatchRows))
            var start = 0
            while start < batch.clean.count {
                let end = min(batch.clean.count, start + limit)
                let part = batch.clean.rows(start..<end)
                var request = Loupe_V1_BatchPredictRequest()
                request.rows = Loupe_V1_DiamondColumns(featureColumns: part.columns)
                request.level = level
                if let selector { request.model = selector }
                let response: Loupe_V1_BatchPredictResponse
                do {
                    response = try await client.call(.batchPredict, request, rowCount: UInt32(part.count))
                } catch { throw CLIError(error.oneLine) }
                for i in 0..<part.count where !response.prices[i].isNaN {
                    lines.append("\(part.sourceRow[i]),\(cents(response.prices[i])),\(cents(response.lows[i])),"
                        + "\(cents(response.highs[i])),\(response.level)")
                }
                start = end
            }
            let text = lines.joined(separator: "\n") + "\n"
            if let out { try writeFile(out, Array(text.utf8)) } else { print(text, terminator: "") }
            Terminal.note("\(csv): \(lines.count - 1) rows priced by \(serverOptions.server!), \(batch.quarantine.count) rejected")
            return
        }
        let diamond = try parsedDiamond(validate: false)
        let response: Loupe_V1_PredictResponse
        do {
            var request = Loupe_V1_PredictRequest()
            request.diamond = Loupe_V1_Diamond(diamond)
            request.level = level
            request.explain = explain
            if let selector { request.model = selector }
            response = try await client.call(.predict, request)
        } catch { throw CLIError(error.oneLine) }
        let estimate = PriceEstimate(price: response.price, low: response.low, high: response.high,
                                     level: response.level == 0 ? nil : response.level)
        var reasons: PriceExplanation?
        if explain, response.hasExplanation, response.explanation.contributions.count == Feature.count {
            // The served diamond models are log-price models unless imported with --target price;
            // the response does not say, so the factors assume log price.
            reasons = PriceExplanation(
                baseValue: response.explanation.baseValue, contributions: response.explanation.contributions,
                featureNames: Ensemble.diamondFeatureNames, target: .logPrice)
        }
        if json {
            print(encodeJSON(PredictionJSON(estimate, reasons: reasons)))
        } else {
            print(describe(estimate) + "  [\(response.modelName) v\(response.modelVersion)]")
            if let reasons { print(reasonsTable(reasons, diamond: diamond)) }
        }
    }

    private func parsedDiamond(validate: Bool = true) throws -> Diamond {
        guard let cutLevel = Cut(label: cut!) else { throw CLIError("--cut must be one of \(Cut.levelList), got \"\(cut!)\"") }
        guard let colorLevel = Color(label: color!) else {
            throw CLIError("--color must be one of \(Color.levelList), got \"\(color!)\"")
        }
        guard let clarityLevel = Clarity(label: clarity!) else {
            throw CLIError("--clarity must be one of \(Clarity.levelList), got \"\(clarity!)\"")
        }
        let diamond = Diamond(
            carat: carat!, cut: cutLevel, color: colorLevel, clarity: clarityLevel,
            depth: depth!, table: table!, x: x!, y: y!, z: z!)
        if validate {
            let problems = ValidationRanges.standard.problems(in: diamond)
            guard problems.isEmpty else { throw CLIError(problems.joined(separator: "; ")) }
        }
        return diamond
    }

    private func predictFile(_ path: String, model: Ensemble) throws {
        // The same rules as training data (minus price and duplicates): a row the cleaner
        // would quarantine is not priced, and the reason is reported.
        let batch = try DataSource.file(path).clean(.pricing)
        let scores = model.rawScores(columns: batch.clean.columns)
        let estimates = model.estimates(raw: scores, columns: batch.clean.columns, level: level)
        var lines = ["row,price,low,high,level"]
        for (i, e) in estimates.enumerated() {
            let levelText = e.level.map { "\($0)" } ?? ""
            lines.append("\(batch.clean.sourceRow[i]),\(cents(e.price)),\(cents(e.low)),\(cents(e.high)),\(levelText)")
        }
        let text = lines.joined(separator: "\n") + "\n"
        if let out { try writeFile(out, Array(text.utf8)) } else { print(text, terminator: "") }
        Terminal.note("\(path): \(batch.clean.count) rows priced, \(batch.quarantine.count) rejected")
        for rejected in batch.quarantine.prefix(10) {
            Terminal.note("  " + rejected.reasons.joined(separator: "; "))
        }
        if batch.quarantine.count > 10 { Terminal.note("  … and \(batch.quarantine.count - 10) more") }
    }
}

struct PredictionJSON: Encodable {
    var price: Double
    var low: Double
    var high: Double
    var level: Double?
    var reasons: ReasonsJSON?

    struct ReasonsJSON: Encodable {
        var basePrice: Double
        var steps: [Step]
        struct Step: Encodable {
            var feature: String
            var contribution: Double
            var factor: Double
            var dollars: Double
            var priceAfter: Double
        }
    }

    init(_ e: PriceEstimate, reasons: PriceExplanation? = nil) {
        price = e.price
        low = e.low
        high = e.high
        level = e.level
        self.reasons = reasons.map { r in
            ReasonsJSON(basePrice: r.basePrice, steps: r.steps.map {
                .init(feature: $0.feature, contribution: $0.contribution, factor: $0.factor, dollars: $0.dollars, priceAfter: $0.priceAfter)
            })
        }
    }
}

/// The reasons as a table: from the average diamond's price, each feature's factor and
/// dollars, largest effect first.
func reasonsTable(_ r: PriceExplanation, diamond: Diamond) -> String {
    var lines = ["why: average diamond \(money(r.basePrice)), then"]
    let values = Dictionary(uniqueKeysWithValues: Feature.allCases.map { ($0.name, diamond.value(of: $0)) })
    lines.append("  feature   value          factor     dollars      price")
    for step in r.steps {
        let value = values[step.feature] ?? ""
        let dollars = (step.dollars >= 0 ? "+" : "-") + money(abs(step.dollars))
        lines.append("  " + step.feature.padding(toLength: 9, withPad: " ", startingAt: 0) + " "
            + value.padding(toLength: 12, withPad: " ", startingAt: 0) + " "
            + ("×" + format(step.factor, 3)).leftPadded(8) + " " + dollars.leftPadded(11) + " " + money(step.priceAfter).leftPadded(10))
    }
    return lines.joined(separator: "\n")
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

extension Diamond {
    /// A feature's value as a person writes it (grades by name).
    func value(of feature: Feature) -> String {
        switch feature {
        case .cut: cut.label
        case .color: color.label
        case .clarity: clarity.label
        default: format(self[feature], 2)
        }
    }
}

/// "$5,286 (90% range $4,607 – $6,066)".
func describe(_ e: PriceEstimate) -> String {
    guard let level = e.level else { return "\(money(e.price)) (the model has no calibrated range)" }
    return "\(money(e.price))  (\(format(level * 100, 0))% range \(money(e.low)) – \(money(e.high)))"
}

/// Whole dollars with thousands separators.
func money(_ v: Double) -> String {
    let whole = Int(v.rounded())
    var digits = String(abs(whole))
    var groups: [String] = []
    while digits.count > 3 {
        groups.insert(String(digits.suffix(3)), at: 0)
        digits.removeLast(3)
    }
    groups.insert(digits, at: 0)
    return (whole < 0 ? "-$" : "$") + groups.joined(separator: ",")
}

/// Two decimals, for CSV output.
func cents(_ v: Double) -> String { format(v, 2) }
