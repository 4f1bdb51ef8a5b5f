import DiamondSchema

/// Clean diamonds in columns: one `[Double]` per feature (grades as ordinal codes) plus the
/// price, and for each row the 1-based data row number it came from in the input file.
public struct DiamondTable: Sendable, Equatable {
    /// One column per `Feature`, in `Feature.allCases` order; every column has `count` values.
    public private(set) var columns: [[Double]]
    /// Price in US dollars; `count` values.
    public private(set) var price: [Double]
    /// The 1-based data row each row came from: data records counted from the one after the
    /// header, blank lines not counted, a record spanning several lines counted once (the
    /// numbering of the cleaning report and quarantine; see docs/CLEANING.md).
    public private(set) var sourceRow: [Int]

    /// An empty table.
    public init() {
        columns = Array(repeating: [], count: Feature.count)
        price = []
        sourceRow = []
    }

    /// A table from whole columns; all must have the same length.
    public init(columns: [[Double]], price: [Double], sourceRow: [Int]? = nil) {
        precondition(columns.count == Feature.count, "need one column per feature")
        precondition(columns.allSatisfy { $0.count == price.count }, "columns differ in length")
        self.columns = columns
        self.price = price
        self.sourceRow = sourceRow ?? Array(stride(from: 1, through: price.count, by: 1))
    }

    /// Number of rows.
    public var count: Int { price.count }

    /// The column of one feature.
    public subscript(feature: Feature) -> [Double] { columns[feature.rawValue] }

    /// Appends one diamond with its price and source row.
    public mutating func append(_ diamond: Diamond, price: Double, sourceRow: Int) {
        for feature in Feature.allCases { columns[feature.rawValue].append(diamond[feature]) }
        self.price.append(price)
        self.sourceRow.append(sourceRow)
    }

    /// Appends every row of `other`.
    public mutating func append(contentsOf other: DiamondTable) {
        for f in 0..<columns.count { columns[f].append(contentsOf: other.columns[f]) }
        price.append(contentsOf: other.price)
        sourceRow.append(contentsOf: other.sourceRow)
    }

    /// The diamond in row `index`.
    public func diamond(at index: Int) -> Diamond {
        Diamond(
            carat: columns[0][index],
            cut: Cut(rawValue: UInt8(columns[1][index]))!,
            color: Color(rawValue: UInt8(columns[2][index]))!,
            clarity: Clarity(rawValue: UInt8(columns[3][index]))!,
            depth: columns[4][index], table: columns[5][index],
            x: columns[6][index], y: columns[7][index], z: columns[8][index])
    }

    /// The rows at `indices`, in that order.
    public func rows(_ indices: some Sequence<Int>) -> DiamondTable {
        var out = DiamondTable()
        let idx = Array(indices)
        out.columns = columns.map { col in idx.map { col[$0] } }
        out.price = idx.map { price[$0] }
        out.sourceRow = idx.map { sourceRow[$0] }
        return out
    }
}
