/// An ordered grade: its raw value is the ordinal code used as a model feature (0 = worst).
public protocol Grade: CaseIterable, Sendable, Hashable, CustomStringConvertible
where RawValue == UInt8, Self: RawRepresentable, AllCases: RandomAccessCollection {
    /// The label used in data files, e.g. "Very Good".
    var label: String { get }
}

extension Grade {
    /// Parses a label, ignoring case and surrounding whitespace ("very good", " IDEAL ").
    public init?(label: some StringProtocol) {
        let wanted = Self.normalise(label)
        guard let match = Self.allCases.first(where: { Self.normalise($0.label) == wanted }) else { return nil }
        self = match
    }

    /// The levels worst to best, as labels: used in error messages.
    public static var levelList: String { allCases.map(\.label).joined(separator: ", ") }

    public var description: String { label }

    private static func normalise(_ text: some StringProtocol) -> String {
        text.trimmingSpaces().lowercased()
    }
}

/// Cut quality, worst to best.
public enum Cut: UInt8, Grade {
    case fair, good, veryGood, premium, ideal

    public var label: String {
        switch self {
        case .fair: "Fair"
        case .good: "Good"
        case .veryGood: "Very Good"
        case .premium: "Premium"
        case .ideal: "Ideal"
        }
    }
}

/// Colour grade, worst (J) to best (D).
public enum Color: UInt8, Grade {
    case j, i, h, g, f, e, d

    public var label: String {
        switch self {
        case .j: "J"
        case .i: "I"
        case .h: "H"
        case .g: "G"
        case .f: "F"
        case .e: "E"
        case .d: "D"
        }
    }
}

/// Clarity grade, worst (I1) to best (IF).
public enum Clarity: UInt8, Grade {
    case i1, si2, si1, vs2, vs1, vvs2, vvs1, internallyFlawless

    public var label: String {
        switch self {
        case .i1: "I1"
        case .si2: "SI2"
        case .si1: "SI1"
        case .vs2: "VS2"
        case .vs1: "VS1"
        case .vvs2: "VVS2"
        case .vvs1: "VVS1"
        case .internallyFlawless: "IF"
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs (no Foundation needed).
    func trimmingSpaces() -> Substring {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}
