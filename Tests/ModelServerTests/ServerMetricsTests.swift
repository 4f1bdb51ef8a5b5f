import Foundation
import LoupeProtocol
import ModelServer
import Testing

/// The server's /metrics as a scraper reads it: every family described, the process and the
/// build included, and a promoted model that cannot be loaded counted.
@Suite(.serialized) struct ServerMetricsTests {
    @Test func everyFamilyHasHelpAndTheProcessAndBuildAreThere() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let client = try await fixture.client()
        _ = try await client.predict(sampleDiamond)
        await client.close()

        let text = fixture.server.metrics.exposition()
        let families = text.matches(of: #/\# TYPE ([a-z_]+) /#).map { String($0.1) }
        #expect(families.contains("loupe_calls_total") && families.contains("loupe_call_duration_seconds"))
        for family in families {
            #expect(text.contains("# HELP \(family) "), "\(family) has no HELP")
        }
        func value(_ family: String) -> Double? {
            text.firstMatch(of: try! Regex("(?m)^\(family) ([0-9.e+]+)$")).flatMap { Double($0.output[1].substring ?? "") }
        }
        #expect((value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((value("process_open_fds") ?? 0) >= 3)
        #expect((value("process_max_fds") ?? 0) >= (value("process_open_fds") ?? .infinity))
        #expect((value("process_cpu_seconds_total") ?? 0) > 0)
        let start = value("process_start_time_seconds") ?? 0
        #expect(start > Date().timeIntervalSince1970 - 86_400 && start <= Date().timeIntervalSince1970 + 1, "\(start)")
        #expect(text.contains(/loupe_build_info\{version="\d+\.\d+\.\d+"\} 1/))
    }

    @Test func aPromotedModelThatCannotBeLoadedIsCounted() async throws {
        let fixture = try await ServerFixture.start()
        defer { Task { await fixture.stop() } }
        let version = try fixture.addModel(promote: false, rounds: 5)
        let manifest = try fixture.catalog.store.model(name: "diamonds", version: version)
        // What a damaged disk leaves: the blob no longer decodes.
        try Data("not a zstd frame".utf8).write(
            to: URL(fileURLWithPath: fixture.catalog.store.backend.location(of: manifest.modelBlob)))
        _ = try fixture.catalog.store.promote(name: "diamonds", version: version)
        let counted = /loupe_model_load_failures_total [1-9]/
        for _ in 0..<400 where !fixture.server.metrics.exposition().contains(counted) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(fixture.server.metrics.exposition().contains(counted))
        // The server keeps serving the model it had, and says the alias names another.
        #expect(fixture.server.registry.model?.version == 1)
        let text = fixture.server.metrics.exposition()
        #expect(text.contains("loupe_model_alias_mismatch 1") && text.contains("loupe_model_production_version \(version)"))
        let client = try await fixture.client()
        let health = try await client.health()
        await client.close()
        #expect(health.ready && health.modelVersion == 1)
        #expect(health.message.contains("production names v\(version), which cannot be loaded"), "\(health.message)")
        // The operator's way back: the alias on a version that loads again.
        _ = try fixture.catalog.promote(name: "diamonds", version: 1)
        for _ in 0..<400 where !fixture.server.metrics.exposition().contains("loupe_model_alias_mismatch 0") {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(fixture.server.metrics.exposition().contains("loupe_model_alias_mismatch 0"))
    }
}
