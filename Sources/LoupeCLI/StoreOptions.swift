import ArgumentParser
import Catalog
import Foundation

/// `--store`: where datasets and models live.
struct StoreOptions: ParsableArguments {
    @Option(help: "The artifact store directory (default: $LOUPE_STORE, else ./loupe-store).")
    var store: String?

    /// The store directory this command uses.
    var path: String {
        store ?? ProcessInfo.processInfo.environment["LOUPE_STORE"].flatMap { $0.isEmpty ? nil : $0 } ?? "loupe-store"
    }

    func catalog() throws -> Catalog {
        try oneLine("store \(path)") { try Catalog.open(at: path) }
    }

    /// For commands that only read: works on a store the user cannot write, and never creates one.
    func readOnlyCatalog() throws -> Catalog {
        try oneLine("store \(path)") { try Catalog.openReadOnly(at: path) }
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
