import DiamondSchema
import Foundation
import LiveAccuracy
import RequestLog
import Testing

@Suite struct OutcomeFileTests {
    @Test func readsEveryColumnAndSaysWhatIsWrongPerLine() throws {
        let csv = """
            request_id,principal,carat,cut,color,clarity,depth,table,x,y,z,sold_price,sold_at,outcome_id
            7,acme,1.01,Ideal,G,VS1,61.8,56,6.43,6.47,3.99,5200,2026-12-01T10:00:00Z,a-1
            ,,0.5,Good,E,SI1,62,57,5.1,5.1,3.2,1500,1764583200,
            8,,1.0,Ideal,G,VS1,61.8,56,6.4,6.4,4,5000,,
            ,,1.0,Shiny,G,VS1,61.8,56,6.4,6.4,4,5000,,
            ,,1.0,Ideal,G,VS1,61.8,56,6.4,6.4,4,-3,,
            ,,1.0,Ideal,G,VS1,61.8,56,6.4,6.4,4,5000,yesterday,
            ,,abc,Ideal,G,VS1,61.8,56,6.4,6.4,4,5000,,
            """
        let (outcomes, rejected) = try OutcomeFile.parse(Array(csv.utf8))
        #expect(outcomes.count == 2)
        #expect(outcomes[0].requestID == 7 && outcomes[0].principal == "acme" && outcomes[0].id == "a-1")
        #expect(outcomes[0].soldAt == ISO8601DateFormatter().date(from: "2026-12-01T10:00:00Z"))
        #expect(outcomes[0].diamond.cut == .ideal && outcomes[0].soldPrice == 5200)
        #expect(outcomes[1].soldAt == Date(timeIntervalSince1970: 1_764_583_200) && outcomes[1].requestID == nil)
        #expect(rejected.map(\.line) == [4, 5, 6, 7, 8])
        #expect(rejected[0].reason.contains("principal"))
        #expect(rejected[1].reason.contains("cut \"Shiny\""))
        #expect(rejected[2].reason.contains("sold_price"))
        #expect(rejected[3].reason.contains("sold_at"))
        #expect(rejected[4].reason.contains("carat"))
    }

    @Test func aMissingColumnIsAFileError() {
        #expect(throws: OutcomeError.self) { try OutcomeFile.parse(Array("carat,cut,color\n1,Ideal,G\n".utf8)) }
        #expect(throws: OutcomeError.self) {
            try OutcomeFile.parse(Array("carat,cut,color,clarity,depth,table,x,y,z\n".utf8))
        }
        #expect(throws: OutcomeError.self) { try OutcomeFile.parse([]) }
    }
}

@Suite struct LiveAccuracyTests {
    func score(_ id: String, version: Int, sold: Double, price: Double, low: Double? = nil, high: Double? = nil,
               served: Bool = false) -> OutcomeScore {
        OutcomeScore(
            outcomeID: id, modelName: "m", modelVersion: version, served: served, matchedBy: "none", atMilliseconds: 0,
            soldAtMilliseconds: nil, principal: nil, requestID: nil, soldPrice: sold, price: price, low: low, high: high)
    }

    @Test func figuresPerVersion() throws {
        let scores = [
            score("a", version: 1, sold: 100, price: 110, low: 90, high: 120, served: true),
            score("b", version: 1, sold: 200, price: 170, low: 210, high: 230),
            score("a", version: 2, sold: 100, price: 100),
        ]
        let byVersion = LiveAccuracy.byVersion(scores)
        let v1 = try #require(byVersion[1])
        #expect(v1.outcomes == 2 && v1.served == 1)
        #expect(abs(v1.rmse - ((100.0 + 900.0) / 2).squareRoot()) < 1e-9)
        #expect(abs(v1.mape - (10.0 + 15.0) / 2) < 1e-9)
        #expect(v1.coverage == 0.5)
        #expect(byVersion[2]?.coverage == nil && byVersion[2]?.rmse == 0)
        // Paired: only the outcome both versions were scored on.
        let pair = try #require(LiveAccuracy.paired(scores, 2, 1))
        #expect(pair.a.outcomes == 1 && pair.b.outcomes == 1 && pair.b.mape == 10)
        #expect(LiveAccuracy.paired(scores, 1, 3) == nil)
    }
}
