import ArtifactStore
import Foundation

/// Opening an ``ArtifactStore`` by URL: `s3://BUCKET/PREFIX` on S3-compatible storage, anything
/// else a local directory (the default).
public enum StoreLocation {
    /// True for `s3://…`.
    public static func isS3(_ location: String) -> Bool { S3Configuration.parse(location) != nil }

    /// Opens (creating if needed) the store at `location`. For `s3://` the endpoint, region and
    /// credentials come from `environment` (see ``S3Configuration/fromEnvironment(url:environment:)``).
    public static func open(
        _ location: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        configuration: ArtifactStore.Configuration = .init()
    ) throws -> ArtifactStore {
        guard isS3(location) else { return try ArtifactStore.open(at: location, configuration: configuration) }
        let s3 = try S3Configuration.fromEnvironment(url: location, environment: environment)
        return try ArtifactStore(backend: try S3Backend(configuration: s3), configuration: configuration)
    }

    /// Opens the existing store at `location` for reading only.
    public static func openReadOnly(
        _ location: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        configuration: ArtifactStore.Configuration = .init()
    ) throws -> ArtifactStore {
        guard isS3(location) else { return try ArtifactStore.openReadOnly(at: location, configuration: configuration) }
        let s3 = try S3Configuration.fromEnvironment(url: location, environment: environment)
        return try ArtifactStore(
            backend: try S3Backend(configuration: s3, readOnly: true), configuration: configuration, readOnly: true)
    }
}
