import DiamondSchema
import Foundation
import LiveAccuracy
import RequestLog
import Testing

@Suite(.serialized) struct OutcomeIngestTests {
    func row(_ id: String, method: String = "Predict", principal: String, request: Int64, version: Int,
             diamond: Diamond? = nil, price: Double? = nil) -> GuestbookRow {
        GuestbookRow(
            id: id, atMilliseconds: Int64(Date().timeIntervalSince1970 * 1000) - 60_000, requestID: request, principal: principal, method: method, modelName: "diamonds",
            modelVersion: version, rows: 1, latencyMicroseconds: 10, status: "OK",
            diamond: diamond.map {
                LoggedDiamond(carat: $0.carat, cut: $0.cut.label, color: $0.color.label, clarity: $0.clarity.label,
                              depth: $0.depth, table: $0.table, x: $0.x, y: $0.y, z: $0.z)
            }, price: price, low: price.map { $0 * 0.9 }, high: price.map { $0 * 1.1 }, level: price == nil ? nil : 0.9)
    }

    @Test func joinsByRequestThenDiamondAndScoresEveryLiveVersion() async throws {
        let fixture = try await RolloutFixture.start()
        let stones = try unseenOutcomes(5).map(\.diamond)
        try fixture.catalog.promote(name: "diamonds", version: fixture.worse, to: .canary, percent: 10)
        try await fixture.guestbook.insert([
            row("a", principal: "acme", request: 7, version: fixture.good, diamond: stones[0], price: 1234),
            row("b", method: "BatchPredict", principal: "acme", request: 9, version: fixture.worse),
            row("c", principal: "zed", request: 1, version: fixture.good, diamond: stones[1], price: 999),
        ])
        let outcomes = [
            Outcome(diamond: stones[0], soldPrice: 1300, principal: "acme", requestID: 7),
            Outcome(diamond: stones[2], soldPrice: 2000, principal: "acme", requestID: 9),
            Outcome(diamond: stones[1], soldPrice: 1000),
            Outcome(diamond: stones[3], soldPrice: 3000),
            Outcome(diamond: stones[1], soldPrice: 1000, principal: "acme", requestID: 7),
            Outcome(diamond: Diamond(carat: -1, cut: .ideal, color: .g, clarity: .vs1, depth: 61, table: 56, x: 1, y: 1, z: 1),
                    soldPrice: 10),
        ]
        let ingest = OutcomeIngest(catalog: fixture.catalog, guestbook: fixture.guestbook)
        let summary = try await ingest.ingest(outcomes)
        #expect(summary.accepted == 4 && summary.matchedByRequest == 2 && summary.matchedByDiamond == 1 && summary.unmatched == 1)
        #expect(summary.rejected.map(\.line) == [4, 5])
        #expect(summary.rejected[0].reason.contains("different diamond"))
        #expect(summary.versionsScored == [fixture.good, fixture.worse])

        let scores = try await fixture.guestbook.outcomeScores(model: "diamonds", since: nil)
        #expect(scores.count == 8)  // four outcomes, two live versions each
        func score(sold: Double, version: Int) throws -> OutcomeScore {
            try #require(scores.first { $0.soldPrice == sold && $0.modelVersion == version })
        }
        // A Predict's logged answer is what counts for the version that served it …
        #expect(try score(sold: 1300, version: fixture.good).price == 1234)
        #expect(try score(sold: 1300, version: fixture.good).served)
        #expect(try score(sold: 1300, version: fixture.good).matchedBy == "request")
        #expect(try !score(sold: 1300, version: fixture.worse).served)
        // … a batch row's is computed again from the version that served it.
        #expect(try score(sold: 2000, version: fixture.worse).served)
        #expect(try score(sold: 1000, version: fixture.good).price == 999)
        #expect(try score(sold: 1000, version: fixture.good).matchedBy == "diamond")
        #expect(try score(sold: 3000, version: fixture.good).matchedBy == "none")
        #expect(try !score(sold: 3000, version: fixture.good).served)

        // The same outcomes again: nothing new.
        _ = try await ingest.ingest(outcomes)
        #expect(try await fixture.guestbook.outcomeScores(model: "diamonds", since: nil).count == 8)
        await fixture.stop()
    }
}
