import ArtifactStore
import BundledData
import DataCleaning
import Foundation
import TreeModel
import TreeTraining

/// Loupe's datasets and models in an artifact store: the glue between the store (opaque
/// bytes and JSON) and the domain (clean tables, ensembles, training reports). The CLI and
/// the server both go through it, so they agree on what a dataset or model version holds.
public struct Catalog: Sendable {
    /// The dataset the bundled data becomes on first use, and the default model name.
    public static let defaultDataset = "diamonds"
    public static let defaultModel = "diamonds"

    public let store: ArtifactStore

    public init(store: ArtifactStore) {
        self.store = store
    }

    /// Opens (creating if needed) the store at `path`.
    public static func open(at path: String) throws -> Catalog {
        Catalog(store: try ArtifactStore.open(at: path))
    }

    /// Opens the existing store at `path` for reading only (`ArtifactStore.openReadOnly`).
    public static func openReadOnly(at path: String) throws -> Catalog {
        Catalog(store: try ArtifactStore.openReadOnly(at: path))
    }
}

/// Where a model comes from: a version or alias of a named model in the store.
public struct ModelSpec: Sendable, Equatable, CustomStringConvertible {
    public enum Selector: Sendable, Equatable {
        case version(Int)
        case alias(ModelAlias)
        /// Production when there is one, else the newest version.
        case current
    }

    public var name: String
    public var selector: Selector

    public init(name: String = Catalog.defaultModel, selector: Selector = .current) {
        self.name = name
        self.selector = selector
    }

    /// Parses `name`, `name@production`, `name@staging`, `name@3` or `@3`.
    public init?(parsing text: String) {
        let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        let name = parts[0].isEmpty ? Catalog.defaultModel : String(parts[0])
        guard ArtifactName.isValid(name) else { return nil }
        if parts.count == 1 {
            self.init(name: name)
        } else if let version = Int(parts[1]), version > 0 {
            self.init(name: name, selector: .version(version))
        } else if let alias = ModelAlias(rawValue: String(parts[1])) {
            self.init(name: name, selector: .alias(alias))
        } else {
            return nil
        }
    }

    public var description: String {
        switch selector {
        case .version(let v): "\(name)@\(v)"
        case .alias(let a): "\(name)@\(a)"
        case .current: name
        }
    }
}
