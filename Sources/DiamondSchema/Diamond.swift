/// One diamond's features: the four Cs and the measured proportions.
public struct Diamond: Sendable, Hashable {
    /// Weight in carats.
    public var carat: Double
    public var cut: Cut
    public var color: Color
    public var clarity: Clarity
    /// Total depth percentage: 100 · z / mean(x, y).
    public var depth: Double
    /// Width of the top facet relative to the widest point, in percent.
    public var table: Double
    /// Length in mm.
    public var x: Double
    /// Width in mm.
    public var y: Double
    /// Depth in mm.
    public var z: Double

    public init(
        carat: Double, cut: Cut, color: Color, clarity: Clarity,
        depth: Double, table: Double, x: Double, y: Double, z: Double
    ) {
        self.carat = carat
        self.cut = cut
        self.color = color
        self.clarity = clarity
        self.depth = depth
        self.table = table
        self.x = x
        self.y = y
        self.z = z
    }

    /// The value of one feature, grades as their ordinal codes.
    public subscript(feature: Feature) -> Double {
        switch feature {
        case .carat: carat
        case .cut: Double(cut.rawValue)
        case .color: Double(color.rawValue)
        case .clarity: Double(clarity.rawValue)
        case .depth: depth
        case .table: table
        case .x: x
        case .y: y
        case .z: z
        }
    }

    /// The feature vector in `Feature` order.
    public var features: [Double] { Feature.allCases.map { self[$0] } }
}
