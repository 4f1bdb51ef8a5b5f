import DiamondSchema

/// Where the required columns are in a header, and which columns are extra.
struct HeaderLayout {
    /// The required columns: the nine features in `Feature` order, then the price.
    static let requiredNames: [String] = Feature.allCases.map(\.name) + [Target.priceColumn]
    /// Index of the price in `requiredNames` and `fieldIndex`.
    static let priceSlot = Feature.count

    /// The header's column names as read.
    let columns: [String]
    /// For each required column, its field index in a record; -1 for an optional price column that is absent.
    let fieldIndex: [Int]
    /// Columns that are not required, in file order.
    let extraColumns: [String]

    /// Matches a header's names (case and surrounding spaces ignored) to the required columns.
    init(header: [String], requirePrice: Bool = true) throws(CleaningError) {
        columns = header
        var found = [[Int]](repeating: [], count: Self.requiredNames.count)
        var extra: [String] = []
        for (index, name) in header.enumerated() {
            let key = name.trimmingSpacesAndTabs().lowercased()
            if let slot = Self.requiredNames.firstIndex(of: key) {
                found[slot].append(index)
            } else {
                extra.append(name)
            }
        }
        let missing = Self.requiredNames.indices
            .filter { found[$0].isEmpty && (requirePrice || $0 != Self.priceSlot) }
            .map { Self.requiredNames[$0] }
        if !missing.isEmpty {
            var message = "missing required column\(missing.count == 1 ? "" : "s") "
                + missing.map { "\"\($0)\"" }.joined(separator: ", ")
                + "; the header has " + (header.isEmpty ? "no columns" : header.map { "\"\($0)\"" }.joined(separator: ", "))
            if missing.count == Self.requiredNames.count {
                message += " (the first line must be a header naming the columns "
                    + Self.requiredNames.joined(separator: ", ") + ")"
            }
            throw CleaningError(code: .missingColumns, message: message)
        }
        let repeated = Self.requiredNames.indices.filter { found[$0].count > 1 }
        if !repeated.isEmpty {
            let list = repeated.map { slot in
                "\"\(Self.requiredNames[slot])\" (columns " + found[slot].map { String($0 + 1) }.joined(separator: ", ") + ")"
            }
            throw CleaningError(
                code: .duplicateColumns,
                message: "required column appears more than once in the header: " + list.joined(separator: ", "))
        }
        fieldIndex = found.map { $0.first ?? -1 }
        extraColumns = extra
    }
}

extension String {
    /// The text without leading and trailing spaces and tabs.
    func trimmingSpacesAndTabs() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}
