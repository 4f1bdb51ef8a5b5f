import PostgresNIO

/// Shared rate limits in PostgreSQL: one row per token holds both of its buckets, and a lease is
/// one `INSERT … ON CONFLICT DO UPDATE … RETURNING` — refill, grant and the new level computed
/// by the server in a single statement under the row's lock, so gateways leasing at once never
/// grant the same budget twice and nobody holds a lock across a network round trip.
extension PostgresTokenStore: RateLeaseStore {
    public func leaseRate(_ request: RateLeaseRequest) async throws -> RateLease {
        var binds = PostgresBindings(capacity: 8)
        let l = request.limits
        binds.append(request.tokenID)
        for value in [l.callsPerSecond, l.callBurst, request.calls, l.rowsPerSecond, l.rowBurst, request.rows] {
            binds.append(value)
        }
        binds.append(request.at)
        let query = PostgresQuery(unsafeSQL: Self.leaseSQL, binds: binds)
        return try await run("lease rate budget") {
            for try await (calls, rows) in try await self.database.client.query(query).decode((Double, Double).self) {
                return RateLease(calls: calls, rows: rows)
            }
            return RateLease(calls: 0, rows: 0)
        }
    }

    public func heartbeat(gateway: String, liveWithin: Double, at: Double?) async throws -> Int {
        try await run("record the gateway's heartbeat") {
            // The SELECT sees the table as it was before this statement's own upsert, so it
            // counts the others and adds this gateway.
            for try await count in try await self.database.client.query("""
                WITH now AS (SELECT COALESCE(\(at)::float8, EXTRACT(EPOCH FROM clock_timestamp())::float8) AS s),
                beat AS (
                  INSERT INTO loupe_gateway_heartbeats (gateway_id, seen_s) SELECT \(gateway), s FROM now
                  ON CONFLICT (gateway_id) DO UPDATE SET seen_s = excluded.seen_s),
                gone AS (
                  DELETE FROM loupe_gateway_heartbeats
                  WHERE seen_s < (SELECT s FROM now) - 3600 AND gateway_id <> \(gateway))
                SELECT 1 + count(*) FROM loupe_gateway_heartbeats, now
                WHERE gateway_id <> \(gateway) AND seen_s > now.s - \(liveWithin)
                """
            ).decode(Int64.self) {
                return Int(count)
            }
            return 1
        }
    }

    public func removeHeartbeat(gateway: String) async throws {
        try await run("remove the gateway's heartbeat") {
            _ = try await self.database.client.query("DELETE FROM loupe_gateway_heartbeats WHERE gateway_id = \(gateway)")
        }
    }

    /// $1 token id; $2, $3, $4 the calls' rate, burst and amount wanted; $5, $6, $7 the rows';
    /// $8 now (NULL: the server's clock). A new row starts full; an existing one is refilled
    /// from its `at_s` (never backwards: a gateway whose clock is behind adds nothing), capped
    /// at the burst, then the grant is taken: at most what is there, or, for a negative amount,
    /// given back up to the burst.
    static let leaseSQL: String = {
        /// One bucket's SQL: its value and grant in a new row, its new level and grant in an
        /// existing one (`b`, refilled to `excluded.at_s`). NULL level: unlimited, or full.
        func bucket(
            _ column: String, rate: String, burst: String, want: String
        ) -> (insert: String, insertGrant: String, update: String, grant: String) {
            let elapsed = "GREATEST(0, excluded.at_s - b.at_s)"
            let level = "LEAST(\(burst), COALESCE(b.\(column) + \(elapsed) * \(rate), \(burst)))"
            let grant = """
                CASE WHEN \(rate) <= 0 THEN 0 WHEN \(want) >= 0 THEN LEAST(\(want), GREATEST(0, \(level))) \
                ELSE GREATEST(\(want), \(level) - \(burst)) END
                """
            let freshGrant = "CASE WHEN \(rate) > 0 THEN LEAST(GREATEST(\(want), 0), \(burst)) ELSE 0 END"
            return (
                "CASE WHEN \(rate) > 0 THEN \(burst) - \(freshGrant) END", freshGrant,
                "CASE WHEN \(rate) > 0 THEN \(level) - (\(grant)) END", grant
            )
        }
        let calls = bucket("calls", rate: "$2", burst: "$3", want: "$4")
        let rows = bucket("rows", rate: "$5", burst: "$6", want: "$7")
        return """
            INSERT INTO loupe_rate_buckets AS b (token_id, calls, rows, at_s, granted_calls, granted_rows)
            VALUES ($1, \(calls.insert), \(rows.insert),
              COALESCE($8::float8, EXTRACT(EPOCH FROM clock_timestamp())::float8), \(calls.insertGrant), \(rows.insertGrant))
            ON CONFLICT (token_id) DO UPDATE SET
              granted_calls = \(calls.grant), granted_rows = \(rows.grant),
              calls = \(calls.update), rows = \(rows.update),
              at_s = GREATEST(b.at_s, excluded.at_s)
            RETURNING granted_calls, granted_rows
            """
    }()
}
