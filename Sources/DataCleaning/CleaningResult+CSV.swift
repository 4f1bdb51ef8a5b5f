import DiamondSchema

extension CleaningResult {
    /// The canonical column order of `cleanCSV()`.
    public static let cleanHeader: [String] = Feature.allCases.prefix(6).map(\.name)
        + [Target.priceColumn] + [Feature.x, .y, .z].map(\.name)

    /// The clean rows as CSV with the header `carat,cut,color,clarity,depth,table,price,x,y,z`:
    /// grades as their labels, numbers in Swift's shortest round-trip form (without a trailing
    /// ".0"), so cleaning the output again gives the same values bit for bit.
    public func cleanCSV() -> [UInt8] {
        var out = CSVWriter(reservingCapacity: clean.count * 48 + 64)
        out.append(record: Self.cleanHeader)
        let cuts = Cut.allCases.map(\.label), colors = Color.allCases.map(\.label)
        let clarities = Clarity.allCases.map(\.label)
        let c = clean.columns
        for i in 0..<clean.count {
            out.append(raw: CleaningPass.format(c[Feature.carat.rawValue][i]))
            out.append(byte: Byte.comma)
            out.append(field: cuts[Int(c[Feature.cut.rawValue][i])])
            out.append(byte: Byte.comma)
            out.append(field: colors[Int(c[Feature.color.rawValue][i])])
            out.append(byte: Byte.comma)
            out.append(field: clarities[Int(c[Feature.clarity.rawValue][i])])
            for value in [c[Feature.depth.rawValue][i], c[Feature.table.rawValue][i], clean.price[i],
                          c[Feature.x.rawValue][i], c[Feature.y.rawValue][i], c[Feature.z.rawValue][i]] {
                out.append(byte: Byte.comma)
                out.append(raw: CleaningPass.format(value))
            }
            out.append(byte: Byte.lf)
        }
        return out.bytes
    }

    /// The quarantined rows as CSV. Columns: `row` (the data row number), `rules` (failed rule
    /// ids joined by ";"), `reasons` (messages joined by "; "), then the input header's columns
    /// with each record's raw values; a short record leaves the missing fields empty, and a
    /// record with more fields than the header puts the surplus in added columns `extra_1`, ….
    public func quarantineCSV() -> [UInt8] {
        let columns = report.columns
        let widest = quarantine.map(\.fields.count).max() ?? 0
        let surplus = max(0, widest - columns.count)
        var out = CSVWriter(reservingCapacity: quarantine.count * 160 + 64)
        out.append(record: ["row", "rules", "reasons"] + columns + (0..<surplus).map { "extra_\($0 + 1)" })
        for entry in quarantine {
            var record = [String(entry.row), entry.rules.map(\.id).joined(separator: ";"),
                          entry.reasons.joined(separator: "; ")]
            record += entry.fields
            record += Array(repeating: "", count: columns.count + surplus - entry.fields.count)
            out.append(record: record)
        }
        return out.bytes
    }
}
