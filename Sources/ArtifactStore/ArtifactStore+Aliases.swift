import Foundation

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
    /// A canary takes `percent` (the share of partners it answers, 1–100; default 10, or the
    /// running canary's). Promoting to production the version a canary or shadow runs ends that
    /// rollout: it has become production.
    @discardableResult
    public func promote(
        name: String, version: Int, to alias: ModelAlias = .production, reason: String? = nil, percent: Int? = nil
    ) throws -> AliasRecord {
        try ArtifactName.validate(name, kind: "model")
        if let percent, alias != .canary || !(1...100).contains(percent) {
            throw StoreError(.invalidArgument, alias != .canary
                ? "a share of partners applies to the canary only, not \(alias)"
                : "a canary answers 1 to 100 percent of partners, not \(percent)")
        }
        return try backend.withExclusiveLock {
            _ = try requireManifest(ModelManifest.self, .model, name, version)
            var record = try readAliases(name)
            let now = ManifestCoding.now()
            var share: Int?
            if alias == .canary {
                share = percent ?? record.canaryPercent ?? 10
                record.canaryPercent = share
            }
            record.history.append(
                AliasMove(alias: alias, from: record[alias], to: version, at: now, reason: reason, action: .promote, percent: share))
            record[alias] = version
            if alias == .production {
                for rollout in ModelAlias.rollout where record[rollout] == version {
                    record.clear(rollout, at: now, reason: "v\(version) promoted to production")
                }
            }
            try writeAliases(name, record)
            return record
        }
    }

    /// Unsets `alias` (a canary or a shadow: production and staging are only moved), appending to
    /// the history. Throws `notFound` when it is not set.
    @discardableResult
    public func clear(name: String, alias: ModelAlias, reason: String? = nil) throws -> AliasRecord {
        try ArtifactName.validate(name, kind: "model")
        guard ModelAlias.rollout.contains(alias) else {
            throw StoreError(.invalidArgument, "only a canary or a shadow can be ended; \(alias) is moved by promote and rollback")
        }
        return try backend.withExclusiveLock {
            var record = try readAliases(name)
            guard record[alias] != nil else { throw StoreError(.notFound, "model \(name) has no \(alias) running") }
            record.clear(alias, at: ManifestCoding.now(), reason: reason)
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

extension AliasRecord {
    /// Unsets a rollout alias, recording why.
    mutating func clear(_ alias: ModelAlias, at date: Date, reason: String?) {
        history.append(AliasMove(alias: alias, from: self[alias], to: nil, at: date, reason: reason, action: .clear))
        self[alias] = nil
        if alias == .canary { canaryPercent = nil }
    }
}
