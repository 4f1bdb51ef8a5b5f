import Foundation
import Gateway
import LoupeProtocol
import Testing

/// The gateway's /metrics as a scraper reads it: every family described, the process and the
/// build included.
@Suite(.serialized) struct GatewayMetricsTests {
    @Test func everyFamilyHasHelpAndTheProcessAndBuildAreThere() async throws {
        let fixture = try await GatewayFixture.start()
        defer { Task { await fixture.stop() } }
        let token = try await fixture.token("acme", scopes: ["predict"])
        let client = try await fixture.client(token)
        _ = try await client.quickPredict()
        await client.close()
        await #expect(throws: (any Error).self) { try await fixture.client(raw: "loupe_nonsense") }

        let text = fixture.gateway.metrics.exposition()
        let families = text.matches(of: #/\# TYPE ([a-z_]+) /#).map { String($0.1) }
        #expect(families.contains("loupe_gateway_calls_total") && families.contains("loupe_gateway_rejections_total"))
        #expect(families.contains("loupe_gateway_backend_healthy") && families.contains("loupe_gateway_connections"))
        for family in families {
            #expect(text.contains("# HELP \(family) "), "\(family) has no HELP")
        }
        for family in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                       "process_start_time_seconds"] {
            #expect(families.contains(family), "\(family)")
        }
        #expect(text.contains(/loupe_build_info\{version="\d+\.\d+\.\d+"\} 1/))
    }
}
