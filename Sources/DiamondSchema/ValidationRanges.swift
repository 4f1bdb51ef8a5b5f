/// Plausible ranges for a diamond's measurements: values outside them are data errors, not
/// unusual stones. Shared by cleaning (quarantine) and serving (request validation).
public struct ValidationRanges: Sendable, Equatable {
    /// Carat must be in this range (exclusive of 0).
    public var carat: ClosedRange<Double>
    /// Total depth percentage.
    public var depth: ClosedRange<Double>
    /// Table percentage.
    public var table: ClosedRange<Double>
    /// Each of x, y, z in mm.
    public var dimension: ClosedRange<Double>
    /// How far the stated depth may be from 100·2z/(x+y), in percentage points.
    public var depthTolerance: Double

    public init(
        carat: ClosedRange<Double> = 0.01...10,
        depth: ClosedRange<Double> = 40...80,
        table: ClosedRange<Double> = 40...80,
        dimension: ClosedRange<Double> = 0.1...20,
        depthTolerance: Double = 2.0
    ) {
        self.carat = carat
        self.depth = depth
        self.table = table
        self.dimension = dimension
        self.depthTolerance = depthTolerance
    }

    /// The defaults: wide enough for every real stone in the bundled data.
    public static let standard = ValidationRanges()

    /// The depth percentage implied by the dimensions, or nil when x + y is not positive.
    public static func impliedDepth(x: Double, y: Double, z: Double) -> Double? {
        let mean = x + y
        guard mean > 0 else { return nil }
        return 100 * 2 * z / mean
    }
}
