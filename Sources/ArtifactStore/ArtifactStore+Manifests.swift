/// Shared machinery for versioned manifests: keys, listing, reading, version allocation.
extension ArtifactStore {
    /// The two kinds of versioned manifest.
    enum ManifestKind: String, Sendable {
        case dataset = "datasets"
        case model = "models"

        var noun: String {
            switch self {
            case .dataset: "dataset"
            case .model: "model"
            }
        }
    }

    static func manifestKey(_ kind: ManifestKind, _ name: String, _ version: Int) -> String {
        "\(kind.rawValue)/\(name)/\(version).json"
    }

    static func aliasKey(_ name: String) -> String { "aliases/\(name).json" }

    /// Parses `<n>.json` with a canonical positive `n`.
    static func version(fromFileName name: String) -> Int? {
        guard name.hasSuffix(".json") else { return nil }
        let digits = name.dropLast(5)
        guard let first = digits.first, first != "0", digits.allSatisfy(\.isASCII),
            let version = Int(digits), version > 0
        else { return nil }
        return version
    }

    /// The versions stored under one name, ascending (one prefix listed).
    func versions(_ kind: ManifestKind, _ name: String) throws -> [Int] {
        try ArtifactName.validate(name, kind: kind.noun)
        return try backend.listDocuments(prefix: "\(kind.rawValue)/\(name)/")
            .compactMap(Self.version(fromFileName:))
            .sorted()
    }

    /// The names that have at least one version, sorted.
    func names(_ kind: ManifestKind) throws -> [String] {
        try backend.listDocuments(prefix: "\(kind.rawValue)/")
            .filter(ArtifactName.isValid)
            .filter { try !versions(kind, $0).isEmpty }
            .sorted()
    }

    /// Reads and checks one manifest; nil when absent.
    func readManifest<M: Decodable & VersionedManifest>(
        _ type: M.Type, _ kind: ManifestKind, _ name: String, _ version: Int
    ) throws -> M? {
        let key = Self.manifestKey(kind, name, version)
        guard let bytes = try backend.readDocument(key) else { return nil }
        let manifest = try ManifestCoding.decode(type, from: bytes, key: key)
        guard manifest.name == name, manifest.version == version else {
            throw StoreError(
                .corruptManifest,
                "\(key) describes \(manifest.name) version \(manifest.version), not \(name) version \(version)")
        }
        return manifest
    }

    func requireManifest<M: Decodable & VersionedManifest>(
        _ type: M.Type, _ kind: ManifestKind, _ name: String, _ version: Int
    ) throws -> M {
        try ArtifactName.validate(name, kind: kind.noun)
        guard let manifest = try readManifest(type, kind, name, version) else {
            let known = try versions(kind, name)
            let hint = known.isEmpty ? "no versions of \(name) exist" : "versions are \(Self.describe(known))"
            throw StoreError(.notFound, "\(kind.noun) \(name) version \(version) not found (\(hint))")
        }
        return manifest
    }

    /// Allocates the next version under the lock and writes the manifest `make` builds for it,
    /// after confirming that every blob it references is present and durable.
    func writeNextVersion<M: Encodable & VersionedManifest>(
        _ kind: ManifestKind,
        _ name: String,
        blobs: [BlobDigest],
        check: () throws -> Void = {},
        _ make: (Int) -> M
    ) throws -> M {
        try backend.withExclusiveLock {
            for blob in blobs where try !backend.confirmBlob(blob) {
                throw StoreError(
                    .notFound,
                    "blob \(blob) referenced by the new \(kind.noun) \(name) is not in the store (\(backend.location(of: blob)))")
            }
            try check()
            let version = (try versions(kind, name).last ?? 0) + 1
            let manifest = make(version)
            try backend.replaceDocument(Self.manifestKey(kind, name, version), with: try ManifestCoding.encode(manifest))
            return manifest
        }
    }

    /// "1–4, 7" style description of a version list.
    static func describe(_ versions: [Int]) -> String {
        guard let first = versions.first else { return "none" }
        var parts: [String] = []
        var start = first
        var last = first
        for v in versions.dropFirst() {
            if v == last + 1 { last = v; continue }
            parts.append(start == last ? "\(start)" : "\(start)–\(last)")
            start = v
            last = v
        }
        parts.append(start == last ? "\(start)" : "\(start)–\(last)")
        return parts.joined(separator: ", ")
    }

    /// Runs a write that stores blobs and then a manifest, retrying once if garbage collection
    /// removed a just-deduplicated blob between the two steps.
    func retryingBlobRace<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as StoreError where error.code == .notFound && error.message.hasPrefix("blob ") {
            return try body()
        }
    }
}

/// What the generic manifest machinery needs to know about a manifest.
protocol VersionedManifest {
    var name: String { get }
    var version: Int { get }
}

extension DatasetManifest: VersionedManifest {}
extension ModelManifest: VersionedManifest {}
