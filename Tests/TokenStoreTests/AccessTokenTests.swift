import Foundation
import Testing
@testable import TokenStore

@Suite struct AccessTokenTests {
    @Test func generatedTokensRoundTripAndLookRight() throws {
        var seen = Set<String>()
        for _ in 0..<200 {
            let token = AccessToken.generate()
            let raw = token.rawValue
            #expect(raw.count == AccessToken.length)
            #expect(raw.hasPrefix("loupe_"))
            #expect(try AccessToken.parse(raw) == token)
            #expect(token.matches(storedHash: token.secretHash))
            #expect(!token.description.contains(token.secret))
            seen.insert(token.id)
        }
        #expect(seen.count == 200)
    }

    @Test func everySingleCharacterChangeIsCaughtByTheChecksum() throws {
        let raw = Array(AccessToken.generate().rawValue)
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        var caught = 0
        var tried = 0
        for index in 6..<raw.count where raw[index] != "_" {
            var typo = raw
            typo[index] = alphabet.first { $0 != raw[index] }!
            tried += 1
            #expect(throws: AccessToken.ParseError.self) { try AccessToken.parse(String(typo)) }
            if (try? AccessToken.parse(String(typo))) == nil { caught += 1 }
        }
        #expect(caught == tried)
        // Swapped neighbours in the secret, too.
        var swapped = raw
        swapped.swapAt(20, 21)
        if swapped != raw {
            #expect(throws: AccessToken.ParseError.badChecksum) { try AccessToken.parse(String(swapped)) }
        }
    }

    @Test func malformedStringsAreRejectedWithAReason() {
        let good = AccessToken.generate().rawValue
        let cases = [
            "", "loupe", "hello world", String(good.dropLast()), good + "x", good.replacingOccurrences(of: "loupe_", with: "loupx_"),
            good.replacingOccurrences(of: "_", with: "-"), String(good.prefix(20)) + "!" + String(good.dropFirst(21)),
        ]
        for text in cases {
            do {
                _ = try AccessToken.parse(text)
                Issue.record("accepted \(text)")
            } catch {
                #expect(!error.description.contains(text) || text.isEmpty || text.count < 12)
            }
        }
    }

    @Test func aWrongSecretDoesNotMatch() {
        let token = AccessToken.generate()
        let other = AccessToken(id: token.id, secret: AccessToken.generate().secret)
        #expect(!other.matches(storedHash: token.secretHash))
        #expect(!token.matches(storedHash: ""))
        #expect(token.secretHash.count == 64)
    }

    @Test func utcDaysAndMidnight() {
        let date = Date(timeIntervalSince1970: 86_400 * 20_000 + 3600)  // 2024-10-04 01:00 UTC
        #expect(utcDay(date) == "2024-10-04")
        #expect(millisecondsToNextUTCDay(from: date) == 23 * 3_600_000)
    }
}
