extension ArtifactStore {
    /// Registers a new version of dataset `name`: stores the clean CSV and the quarantine (at
    /// ``Configuration/datasetCompressionLevel``) and the report as blobs, then writes `datasets/<name>/<n>.json` with the next version number.
    ///
    /// - Parameters:
    ///   - reportJSON: the cleaning report; must be valid JSON.
    ///   - parent: an existing version of the same dataset this one derives from.
    @discardableResult
    public func putDataset(
        name: String,
        cleanCSV: [UInt8],
        quarantineCSV: [UInt8]? = nil,
        reportJSON: [UInt8]? = nil,
        counts: RowCounts,
        parent: Int? = nil,
        note: String? = nil,
        source: String? = nil
    ) throws -> DatasetManifest {
        try ArtifactName.validate(name, kind: "dataset")
        if let reportJSON { try ManifestCoding.validateJSON(reportJSON, what: "the report of dataset \(name)") }
        return try retryingBlobRace {
            try putDataset(
                name: name,
                clean: try putBlob(cleanCSV, compressionLevel: configuration.datasetCompressionLevel),
                quarantine: try quarantineCSV.map { try putBlob($0, compressionLevel: configuration.datasetCompressionLevel) },
                report: try reportJSON.map { try putBlob($0) },
                counts: counts, parent: parent, note: note, source: source)
        }
    }

    /// Registers a new version of dataset `name` whose blobs are already stored (for example
    /// streamed in with ``putBlob(contentsOfFile:)``).
    @discardableResult
    public func putDataset(
        name: String,
        clean: BlobDigest,
        quarantine: BlobDigest? = nil,
        report: BlobDigest? = nil,
        counts: RowCounts,
        parent: Int? = nil,
        note: String? = nil,
        source: String? = nil
    ) throws -> DatasetManifest {
        try ArtifactName.validate(name, kind: "dataset")
        guard counts.rowsIn >= 0, counts.clean >= 0, counts.quarantined >= 0 else {
            throw StoreError(.invalidArgument, "dataset \(name): row counts must not be negative, got \(counts)")
        }
        let created = ManifestCoding.now()
        let blobs = [clean] + [quarantine, report].compactMap { $0 }
        return try writeNextVersion(.dataset, name, blobs: blobs, check: {
            if let parent { _ = try requireManifest(DatasetManifest.self, .dataset, name, parent) }
        }) { version in
            DatasetManifest(
                name: name, version: version, cleanBlob: clean, quarantineBlob: quarantine, reportBlob: report,
                counts: counts, parent: parent, created: created, note: note, source: source)
        }
    }

    /// One version of a dataset; throws `notFound` when it does not exist.
    public func dataset(name: String, version: Int) throws -> DatasetManifest {
        try requireManifest(DatasetManifest.self, .dataset, name, version)
    }

    /// The newest version of a dataset, or nil when it has none.
    public func latestDataset(name: String) throws -> DatasetManifest? {
        guard let version = try versions(.dataset, name).last else { return nil }
        return try dataset(name: name, version: version)
    }

    /// The version numbers of a dataset, ascending.
    public func datasetVersions(name: String) throws -> [Int] {
        try versions(.dataset, name)
    }

    /// Every version of a dataset, oldest first.
    public func datasets(name: String) throws -> [DatasetManifest] {
        try versions(.dataset, name).map { try dataset(name: name, version: $0) }
    }

    /// The names of all datasets, sorted.
    public func datasetNames() throws -> [String] {
        try names(.dataset)
    }
}
