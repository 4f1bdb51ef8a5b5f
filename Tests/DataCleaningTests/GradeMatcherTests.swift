import DiamondSchema
import Testing
@testable import DataCleaning

@Suite("Grade labels")
struct GradeMatcherTests {
    private func code<G: Grade>(_ matcher: GradeMatcher<G>, _ text: String) -> UInt8? {
        Array(text.utf8).withUnsafeBufferPointer { matcher.code($0) }
    }

    /// Whatever the text, the byte matcher agrees with the schema's `Grade(label:)`.
    @Test(arguments: [
        "Ideal", "ideal", "IDEAL", " Ideal\t", "Very Good", "very good", "VERY GOOD", "Very  Good",
        "VeryGood", "Good ", "Goo", "Goodd", "", " ", "Ideal\u{0}", "Idéal", "Ｉdeal", "Premium",
        "Fair", "fair ", "I1", "i1", "IF", "if", "vvs1", "VVS2", "SI1", "Si2", "VS 1", "D", "d", "J", "K",
        "\u{212A}", "\u{0130}F", "Very Good Very Good Very Good",
    ])
    func agreesWithTheSchema(_ text: String) {
        #expect(code(GradeMatcher<Cut>(), text) == Cut(label: text)?.rawValue, "cut \(text)")
        #expect(code(GradeMatcher<Color>(), text) == Color(label: text)?.rawValue, "color \(text)")
        #expect(code(GradeMatcher<Clarity>(), text) == Clarity(label: text)?.rawValue, "clarity \(text)")
    }

    @Test func everyLabelMatchesItsLevel() {
        for cut in Cut.allCases { #expect(code(GradeMatcher<Cut>(), cut.label) == cut.rawValue) }
        for color in Color.allCases { #expect(code(GradeMatcher<Color>(), color.label.lowercased()) == color.rawValue) }
        for clarity in Clarity.allCases { #expect(code(GradeMatcher<Clarity>(), clarity.label) == clarity.rawValue) }
    }
}
