import ArgumentParser
import Catalog
import Foundation
import S3Store

/// `--store`: where datasets and models live — a local directory (the default) or an
/// S3-compatible bucket (`s3://BUCKET/PREFIX`, endpoint and credentials from the AWS_*
/// environment variables).
struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The artifact store: a directory, or s3://BUCKET/PREFIX (default: $LOUPE_STORE, else ./loupe-store).",
        discussion: "For s3:// the endpoint, region and credentials come from AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3), "
            + "AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN."))
    var store: String?

    @Option(help: ArgumentHelp(
        "With an s3:// store: the local directory for this machine's own files (tokens, request log, server secret, "
            + "inbox) (default: $LOUPE_STATE_DIR, else ./loupe-state).",
        valueName: "directory"))
    var stateDir: String?

    /// The store as named: a directory or an s3:// URL (for messages, and to open it).
    var location: String {
        store ?? ProcessInfo.processInfo.environment["LOUPE_STORE"].flatMap { $0.isEmpty ? nil : $0 } ?? "loupe-store"
    }

    /// True when the store is in S3-compatible object storage.
    var isS3: Bool { StoreLocation.isS3(location) }

    /// The local directory for what is not in the artifact store (tokens, the request log, the
    /// server secret, the inbox): the store directory itself, or for an s3:// store the state
    /// directory.
    var path: String {
        guard isS3 else { return location }
        return stateDir ?? ProcessInfo.processInfo.environment["LOUPE_STATE_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "loupe-state"
    }

    func catalog() throws -> Catalog {
        try oneLine("store \(location)") {
            if isS3 { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
            return Catalog(store: try StoreLocation.open(location))
        }
    }

    /// For commands that only read: works on a store the user cannot write, and never creates one.
    func readOnlyCatalog() throws -> Catalog {
        try oneLine("store \(location)") { Catalog(store: try StoreLocation.openReadOnly(location)) }
    }
}

/// A model named on the command line: a model file, or a model in the store
/// (`diamonds`, `diamonds@production`, `diamonds@3`, `@3`).
struct ModelArgument: ExpressibleByArgument {
    enum Source {
        case file(String)
        case store(ModelSpec)
    }

    let source: Source

    init?(argument: String) {
        if FileManager.default.fileExists(atPath: argument) || argument.contains("/") || argument.hasSuffix(".loupe") {
            source = .file(argument)
        } else if let spec = ModelSpec(parsing: argument) {
            source = .store(spec)
        } else {
            return nil
        }
    }

    static let help = "A model file, or a model in the store: NAME, NAME@production, NAME@staging, NAME@VERSION."
}
