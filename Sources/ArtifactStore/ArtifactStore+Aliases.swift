extension ArtifactStore {
    /// Where the aliases of model `name` point and how they got there (empty when never promoted).
    public func aliases(name: String) throws -> AliasRecord {
        try ArtifactName.validate(name, kind: "model")
        return try readAliases(name)
    }

    /// The model version an alias points to, or nil when the alias is unset.
    public func model(name: String, alias: ModelAlias) throws -> ModelManifest? {
        guard let version = try aliases(name: name)[alias] else { return nil }
        return try model(name: name, version: version)
    }

    /// Points `alias` of model `name` at `version` (which must exist), appending to the history.
    @discardableResult
    public func promote(
        name: String, version: Int, to alias: ModelAlias = .production, reason: String? = nil
    ) throws -> AliasRecord {
        try ArtifactName.validate(name, kind: "model")
        return try backend.withExclusiveLock {
            _ = try requireManifest(ModelManifest.self, .model, name, version)
            var record = try readAliases(name)
            record.history.append(
                AliasMove(alias: alias, from: record[alias], to: version, at: ManifestCoding.now(), reason: reason, action: .promote))
            record[alias] = version
            try writeAliases(name, record)
            return record
        }
    }

    /// Moves `alias` (production by default) back to the version it pointed to before the
    /// current one, skipping versions already rolled back from. Throws `noRollbackTarget` when
    /// there is no earlier version.
    @discardableResult
    public func rollback(name: String, alias: ModelAlias = .production, reason: String? = nil) throws -> AliasRecord {
        try ArtifactName.validate(name, kind: "model")
        return try backend.withExclusiveLock {
            var record = try readAliases(name)
            let stack = record.rollbackStack(for: alias)
            guard stack.count >= 2 else {
                let current = record[alias].map { "version \($0)" } ?? "nothing"
                throw StoreError(
                    .noRollbackTarget,
                    "model \(name): \(alias) points to \(current) and its history holds no earlier version to roll back to")
            }
            let target = stack[stack.count - 2]
            _ = try requireManifest(ModelManifest.self, .model, name, target)
            record.history.append(
                AliasMove(alias: alias, from: record[alias], to: target, at: ManifestCoding.now(), reason: reason, action: .rollback))
            record[alias] = target
            try writeAliases(name, record)
            return record
        }
    }

    func readAliases(_ name: String) throws -> AliasRecord {
        let key = Self.aliasKey(name)
        guard let bytes = try backend.readDocument(key) else { return AliasRecord() }
        return try ManifestCoding.decode(AliasRecord.self, from: bytes, key: key)
    }

    private func writeAliases(_ name: String, _ record: AliasRecord) throws {
        try backend.replaceDocument(Self.aliasKey(name), with: try ManifestCoding.encode(record))
    }
}
