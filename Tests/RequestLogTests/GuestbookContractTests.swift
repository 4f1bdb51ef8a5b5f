import Foundation
import RequestLog
import Testing

extension RequestLogSuites {
    /// The same contract on SQLite and PostgreSQL: one protocol, one schema, the same queries.
    @Suite struct GuestbookContractTests {
        @Test(arguments: Engine.allCases) func insertIsIdempotentAndRowsRoundTrip(engine: Engine) async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            guard let book = try await makeGuestbook(engine, scratch: scratch) else { return }
            var odd = row(52, principal: "")  // empty text stays empty (not NULL), others exactly as given
            odd.error = ""
            odd.tokenID = "ünïcødé-" + String(repeating: "x", count: 300)
            odd.diamond?.cut = ""
            let rows = (0..<50).map { row($0) } + [row(50, method: "BatchPredict", rows: 1000), row(51, status: "INVALID_ARGUMENT"), odd]
            try await book.insert(rows)
            // A replay of the same rows (after a timeout or a crash) adds nothing.
            try await book.insert(Array(rows[10..<30]))
            #expect(try await book.count() == rows.count)
            let back = try await book.rows(GuestbookQuery(limit: 1000))
            #expect(back.count == rows.count)
            #expect(back.first?.id == "test-52")  // newest first
            #expect(Set(back) == Set(rows))
            let predict = try #require(back.first { $0.id == "test-7" })
            #expect(predict.diamond?.cut == "Ideal" && predict.price == 5007 && predict.level == 0.9)
            #expect(predict.diamond?.features?.count == 9)
            let batch = try #require(back.first { $0.method == "BatchPredict" })
            #expect(batch.rows == 1000 && batch.diamond == nil && batch.price == nil)
            await book.close()
        }

        @Test(arguments: Engine.allCases) func filtersByTimePrincipalMethodAndStatus(engine: Engine) async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            guard let book = try await makeGuestbook(engine, scratch: scratch) else { return }
            let base: Int64 = 1_700_000_000_000
            var rows: [GuestbookRow] = []
            for i in 0..<40 {
                rows.append(row(
                    i, at: base + Int64(i) * 1000, principal: i % 2 == 0 ? "acme" : "bling",
                    method: i % 4 == 0 ? "BatchPredict" : "Predict", status: i % 10 == 9 ? "INVALID_ARGUMENT" : "OK"))
            }
            try await book.insert(rows)
            let since = Date(timeIntervalSince1970: Double(base + 20_000) / 1000)
            #expect(try await book.rows(GuestbookQuery(since: since, limit: 100)).count == 20)
            #expect(try await book.rows(GuestbookQuery(principal: "bling", limit: 100)).allSatisfy { $0.principal == "bling" })
            #expect(try await book.rows(GuestbookQuery(principal: "bling", limit: 100)).count == 20)
            #expect(try await book.rows(GuestbookQuery(method: "BatchPredict", limit: 100)).count == 10)
            #expect(try await book.rows(GuestbookQuery(status: "error", limit: 100)).count == 4)
            #expect(try await book.rows(GuestbookQuery(status: "INVALID_ARGUMENT", limit: 100)).count == 4)
            #expect(try await book.rows(GuestbookQuery(principal: "acme", method: "Predict", limit: 3)).count == 3)
            #expect(try await book.rows(GuestbookQuery(principal: "nobody", limit: 100)).isEmpty)
            await book.close()
        }

        @Test(arguments: Engine.allCases) func statsCountPercentilesAndGroups(engine: Engine) async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            guard let book = try await makeGuestbook(engine, scratch: scratch) else { return }
            // Latencies 1…100 µs; 10 errors; one batch of 500 rows.
            var rows = (1...100).map { row($0, principal: $0 <= 30 ? "bling" : "acme", latency: Int64($0)) }
            for i in 0..<10 { rows[i].status = "NOT_FOUND" }
            rows[99].method = "BatchPredict"
            rows[99].rows = 500
            try await book.insert(rows)
            let stats = try await book.stats(GuestbookQuery())
            #expect(stats.calls == 100 && stats.errors == 10)
            #expect(stats.rowsScored == 89 + 500)  // failed calls score nothing
            #expect(stats.p50Microseconds == 50 && stats.p90Microseconds == 90 && stats.p99Microseconds == 99)
            #expect(stats.maxMicroseconds == 100)
            #expect(abs(stats.errorRate - 0.1) < 1e-9)
            #expect(stats.byMethod.map(\.key) == ["Predict", "BatchPredict"])
            #expect(stats.byPrincipal.first { $0.key == "bling" }?.calls == 30)
            #expect(stats.byPrincipal.first { $0.key == "bling" }?.errors == 10)
            let filtered = try await book.stats(GuestbookQuery(principal: "acme"))
            #expect(filtered.calls == 70 && filtered.errors == 0)
            let empty = try await book.stats(GuestbookQuery(principal: "nobody"))
            #expect(empty.calls == 0 && empty.p50Microseconds == nil)
            await book.close()
        }

        @Test(arguments: Engine.allCases) func retentionAndRecentInputs(engine: Engine) async throws {
            let scratch = try Scratch()
            defer { scratch.remove() }
            guard let book = try await makeGuestbook(engine, scratch: scratch) else { return }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let old = (0..<5).map { row($0, at: now - 10 * 86_400_000) }
            let fresh = (5..<15).map { row($0, at: now - 1000) }
            let failed = [row(15, at: now, status: "INVALID_ARGUMENT")]
            let batch = [row(16, at: now, method: "BatchPredict", rows: 10)]
            try await book.insert(old + fresh + failed + batch)
            let inputs = try await book.recentPredictInputs(since: Date().addingTimeInterval(-3600), limit: 100)
            // Successful Predict calls only, newest first.
            #expect(inputs.count == 10)
            #expect(abs((inputs.first?.carat ?? 0) - 1.14) < 1e-9)
            #expect(try await book.recentPredictInputs(since: Date().addingTimeInterval(-3600), limit: 3).count == 3)
            #expect(try await book.deleteOlder(than: Date().addingTimeInterval(-86_400)) == 5)
            #expect(try await book.count() == 12)
            await book.close()
        }

        @Test func badLocationsGiveClearErrors() async throws {
            await #expect { _ = try await PostgresGuestbook(url: "postgres://host-without-user/db") } throws: {
                "\($0)".contains("postgres://user:password@host:5432/database")
            }
            await #expect { _ = try await PostgresGuestbook(url: "postgres://u:secret@localhost/db?sslmode=sometimes") } throws: {
                "\($0)".contains("sslmode must be disable, prefer or require")
            }
            #expect { _ = try SQLiteGuestbook(path: "/proc/not-here/x.sqlite") } throws: {
                "\($0)".contains("cannot open the request log database /proc/not-here/x.sqlite")
            }
            let scratch = try Scratch()
            defer { scratch.remove() }
            #expect { _ = try SQLiteGuestbook(path: scratch.path + "/x.sqlite", tablePrefix: "Robert'); DROP") } throws: {
                "\($0)".contains("table prefix")
            }
            #expect(throws: RequestLogError.self) { try LoggedMethods.validate("Predikt") }
            #expect(try LoggedMethods.validate("batchpredict") == "BatchPredict")
        }
    }
}
