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
    @inlinable
    public static func impliedDepth(x: Double, y: Double, z: Double) -> Double? {
        let mean = x + y
        guard mean > 0 else { return nil }
        return 100 * 2 * z / mean
    }
}

/// One thing wrong with a diamond: the field at fault and what is wrong with it.
public struct FieldViolation: Sendable, Equatable {
    /// The feature's name ("carat"), or "depth" for the consistency check.
    public var field: String
    /// "carat must be > 0, got -1.0".
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

extension ValidationRanges {
    /// What is wrong with a diamond's measurements under these ranges (empty when it is
    /// plausible). The same checks the cleaning rules apply to data rows.
    public func violations(in d: Diamond) -> [FieldViolation] {
        var found: [FieldViolation] = []
        func check(_ name: String, _ value: Double, _ range: ClosedRange<Double>) {
            if !value.isFinite {
                found.append(FieldViolation(field: name, message: "\(name) must be a number, got \(value)"))
            } else if value <= 0 {
                found.append(FieldViolation(field: name, message: "\(name) must be > 0, got \(value)"))
            } else if !range.contains(value) {
                found.append(FieldViolation(
                    field: name, message: "\(name) must be within \(range.lowerBound)...\(range.upperBound), got \(value)"))
            }
        }
        check("carat", d.carat, carat)
        check("depth", d.depth, depth)
        check("table", d.table, table)
        check("x", d.x, dimension)
        check("y", d.y, dimension)
        check("z", d.z, dimension)
        if found.isEmpty, let implied = Self.impliedDepth(x: d.x, y: d.y, z: d.z),
            abs(d.depth - implied) > depthTolerance
        {
            found.append(FieldViolation(
                field: "depth",
                message: "depth \(d.depth) does not match the dimensions (100·2z/(x+y) = \(Self.rounded(implied)), "
                    + "tolerance \(depthTolerance))"))
        }
        return found
    }

    /// Whether a diamond with these measurements passes every check of `violations(in:)`
    /// (exactly when that finds nothing), without building a diamond or a message: a batch
    /// checks each row this way and asks `violations` only about the rows it rejects.
    @inlinable
    public func accepts(carat: Double, depth: Double, table: Double, x: Double, y: Double, z: Double) -> Bool {
        @inline(__always) func plausible(_ value: Double, _ range: ClosedRange<Double>) -> Bool {
            value.isFinite && value > 0 && range.contains(value)
        }
        guard plausible(carat, self.carat), plausible(depth, self.depth), plausible(table, self.table),
            plausible(x, dimension), plausible(y, dimension), plausible(z, dimension)
        else { return false }
        if let implied = Self.impliedDepth(x: x, y: y, z: z), abs(depth - implied) > depthTolerance { return false }
        return true
    }

    /// The violations' messages.
    public func problems(in d: Diamond) -> [String] { violations(in: d).map(\.message) }

    static func rounded(_ v: Double) -> Double { (v * 100).rounded() / 100 }
}
