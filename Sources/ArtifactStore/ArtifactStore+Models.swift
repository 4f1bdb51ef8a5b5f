extension ArtifactStore {
    /// Registers a new version of model `name`: stores the model bytes and the training report
    /// as blobs, then writes `models/<name>/<n>.json` with the next version number.
    ///
    /// - Parameters:
    ///   - dataset: the dataset version it was trained on; must exist.
    ///   - hyperparameters: the training configuration, a JSON object (opaque to the store).
    ///   - metrics: evaluation metrics by name; every value must be finite.
    ///   - reportJSON: the training report; must be valid JSON.
    ///   - parent: an existing version of the same model this one derives from.
    @discardableResult
    public func putModel(
        name: String,
        modelBytes: [UInt8],
        dataset: DatasetReference,
        hyperparameters: JSONValue = [:],
        metrics: [String: Double] = [:],
        reportJSON: [UInt8]? = nil,
        parent: Int? = nil,
        note: String? = nil
    ) throws -> ModelManifest {
        try ArtifactName.validate(name, kind: "model")
        try Self.validateModelArguments(name: name, hyperparameters: hyperparameters, metrics: metrics)
        if let reportJSON { try ManifestCoding.validateJSON(reportJSON, what: "the report of model \(name)") }
        return try retryingBlobRace {
            try putModel(
                name: name, model: try putBlob(modelBytes), dataset: dataset, hyperparameters: hyperparameters,
                metrics: metrics, report: try reportJSON.map { try putBlob($0) }, parent: parent, note: note)
        }
    }

    /// Registers a new version of model `name` whose blobs are already stored.
    @discardableResult
    public func putModel(
        name: String,
        model: BlobDigest,
        dataset: DatasetReference,
        hyperparameters: JSONValue = [:],
        metrics: [String: Double] = [:],
        report: BlobDigest? = nil,
        parent: Int? = nil,
        note: String? = nil
    ) throws -> ModelManifest {
        try ArtifactName.validate(name, kind: "model")
        try ArtifactName.validate(dataset.name, kind: "dataset")
        try Self.validateModelArguments(name: name, hyperparameters: hyperparameters, metrics: metrics)
        let created = ManifestCoding.now()
        return try writeNextVersion(.model, name, blobs: [model] + [report].compactMap { $0 }, check: {
            _ = try requireManifest(DatasetManifest.self, .dataset, dataset.name, dataset.version)
            if let parent { _ = try requireManifest(ModelManifest.self, .model, name, parent) }
        }) { version in
            ModelManifest(
                name: name, version: version, modelBlob: model, dataset: dataset, hyperparameters: hyperparameters,
                metrics: metrics, reportBlob: report, parent: parent, created: created, note: note)
        }
    }

    /// One version of a model; throws `notFound` when it does not exist.
    public func model(name: String, version: Int) throws -> ModelManifest {
        try requireManifest(ModelManifest.self, .model, name, version)
    }

    /// The newest version of a model, or nil when it has none.
    public func latestModel(name: String) throws -> ModelManifest? {
        guard let version = try versions(.model, name).last else { return nil }
        return try model(name: name, version: version)
    }

    /// The version numbers of a model, ascending.
    public func modelVersions(name: String) throws -> [Int] {
        try versions(.model, name)
    }

    /// Every version of a model, oldest first.
    public func models(name: String) throws -> [ModelManifest] {
        try versions(.model, name).map { try model(name: name, version: $0) }
    }

    /// The names of all models, sorted.
    public func modelNames() throws -> [String] {
        try names(.model)
    }

    private static func validateModelArguments(
        name: String, hyperparameters: JSONValue, metrics: [String: Double]
    ) throws {
        guard case .object = hyperparameters else {
            throw StoreError(.invalidArgument, "model \(name): hyperparameters must be a JSON object, got \(hyperparameters)")
        }
        guard hyperparameters.isFinite else {
            throw StoreError(.invalidArgument, "model \(name): hyperparameters contain NaN or infinity, which JSON cannot hold")
        }
        if let bad = metrics.sorted(by: { $0.key < $1.key }).first(where: { !$0.value.isFinite }) {
            throw StoreError(.invalidArgument, "model \(name): metric \"\(bad.key)\" is \(bad.value); metrics must be finite")
        }
    }
}
