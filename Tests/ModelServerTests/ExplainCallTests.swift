import DiamondSchema
import Foundation
import LoupeClient
import LoupeProtocol
import ModelServer
import Testing

@Suite(.serialized) struct ExplainCallTests {
    /// Predict and BatchPredict with `explain`: contributions per feature that add up, with the
    /// base value, to the log of the price; rejected rows get NaN; without the flag, none.
    @Test func predictAndBatchPredictExplainWhenAsked() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let client = try await fixture.client()
        #expect(try await client.predict(sampleDiamond).hasExplanation == false)

        var request = Loupe_V1_PredictRequest()
        request.diamond = Loupe_V1_Diamond(sampleDiamond)
        request.explain = true
        let reply: Loupe_V1_PredictResponse = try await client.call(.predict, request)
        #expect(reply.hasExplanation)
        let e = reply.explanation
        #expect(e.contributions.count == Feature.count)
        #expect(abs(e.contributions.reduce(e.baseValue, +) - log(reply.price)) <= 1e-6)

        var diamonds = Array(repeating: sampleDiamond, count: 5)
        diamonds[2].carat = 0
        var batch = Loupe_V1_BatchPredictRequest()
        batch.rows = Loupe_V1_DiamondColumns(diamonds)
        batch.explain = true
        let batchReply: Loupe_V1_BatchPredictResponse = try await client.call(.batchPredict, batch, rowCount: 5)
        let b = batchReply.explanation
        #expect(b.featureCount == UInt32(Feature.count))
        #expect(b.contributions.count == 5 * Feature.count)
        #expect(b.baseValue == e.baseValue)
        #expect(b.contributions[(2 * 9)..<(3 * 9)].allSatisfy { $0.isNaN })
        #expect(Array(b.contributions[0..<9]) == e.contributions)
        await client.close()
    }
}
