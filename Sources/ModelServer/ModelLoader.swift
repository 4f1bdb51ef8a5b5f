import ArtifactStore
import Catalog
import Logging
import ModelRuntime
import Synchronization

/// Loads model versions from the store into `ServingModel`s (with their FindSimilar index),
/// keeps a few recently used non-production versions, and follows the production alias.
final class ModelLoader: Sendable {
    let catalog: Catalog
    let registry: ModelRegistry
    let defaultModel: String
    private let cache = Mutex<[String: ServingModel]>([:])
    private let cacheOrder = Mutex<[String]>([])
    private let cacheSize = 4
    private let logger: Logger
    private let metrics: ServerMetrics?
    private let unloadable = Mutex<Unloadable?>(nil)
    private let reachable = Mutex<Bool?>(nil)

    /// The production version the server could not load (it serves the one it has), and why.
    struct Unloadable: Sendable {
        var version: Int
        var reason: String
    }

    init(catalog: Catalog, registry: ModelRegistry, defaultModel: String, logger: Logger, metrics: ServerMetrics? = nil) {
        self.catalog = catalog
        self.registry = registry
        self.defaultModel = defaultModel
        self.logger = logger
        self.metrics = metrics
    }

    /// Loads a version: its ensemble and the dataset it was trained on. A failure (a blob
    /// missing or corrupt, a model that does not decode) is counted: the server keeps serving
    /// the model it has, so the counter is how an operator learns of it.
    func load(_ manifest: ModelManifest) throws -> ServingModel {
        do {
            let ensemble = try catalog.ensemble(of: manifest)
            let dataset = try catalog.store.dataset(name: manifest.dataset.name, version: manifest.dataset.version)
            let table = try catalog.table(of: dataset)
            return ServingModel(
                name: manifest.name, version: manifest.version, ensemble: ensemble, trainingData: table,
                datasetName: dataset.name, datasetVersion: dataset.version)
        } catch {
            metrics?.modelLoadFailed()
            throw error
        }
    }

    /// Makes the default model's production version (else its newest) current if it is not
    /// already; returns true when it swapped. Called at start and on every poll.
    @discardableResult
    func refreshProduction() throws -> Bool {
        let manifest: ModelManifest
        if let production = try catalog.store.model(name: defaultModel, alias: .production) {
            manifest = production
        } else if let latest = try catalog.store.latestModel(name: defaultModel) {
            manifest = latest
        } else {
            return false
        }
        if let current = registry.model, current.name == manifest.name, current.version == manifest.version {
            productionServed(manifest.version)
            return false
        }
        let model: ServingModel
        do {
            model = try load(manifest)
        } catch {
            unloadable.withLock { $0 = Unloadable(version: manifest.version, reason: "\(error)") }
            metrics?.production(alias: manifest.version, served: false)
            throw error
        }
        productionServed(manifest.version)
        let old = registry.swap(to: model)
        logger.info("serving model", metadata: [
            "model": "\(manifest.name)", "version": "\(manifest.version)",
            "replaced": "\(old.map { String($0.version) } ?? "none")",
        ])
        return true
    }

    /// Whether the store answered the last time it was asked: by the poller (every poll
    /// interval), or now when it has never been asked. Health answers on the event loop, and a
    /// store in object storage that is down can take seconds to fail (retries, timeouts): it
    /// must not stall the loop's other calls, so it reads this instead of asking the store.
    var storeReachable: Bool {
        if let known = reachable.withLock({ $0 }) { return known }
        return probeStore()
    }

    /// Asks the store for its model names and remembers whether it answered.
    @discardableResult
    func probeStore() -> Bool {
        let ok = (try? catalog.store.modelNames()) != nil
        reachable.withLock { $0 = ok }
        return ok
    }

    /// The production version the server could not load, if the alias names one.
    var unloadableProduction: Unloadable? { unloadable.withLock { $0 } }

    private func productionServed(_ version: Int) {
        unloadable.withLock { $0 = nil }
        metrics?.production(alias: version, served: true)
    }

    /// The model a call selects: the current one for an empty selector or one that names it,
    /// else a version loaded from the store (cached).
    func model(name: String, version: Int?, alias: ModelAlias?) throws -> ServingModel? {
        let name = name.isEmpty ? defaultModel : name
        let current = registry.model
        if version == nil, alias == nil || alias == .production, let current, current.name == name {
            return current
        }
        let manifest: ModelManifest
        if let version {
            manifest = try catalog.store.model(name: name, version: version)
        } else if let found = try catalog.store.model(name: name, alias: alias ?? .production) {
            manifest = found
        } else {
            return nil
        }
        if let current, current.name == manifest.name, current.version == manifest.version { return current }
        let key = "\(manifest.name)@\(manifest.version)"
        if let cached = cache.withLock({ $0[key] }) { return cached }
        let loaded = try load(manifest)
        cache.withLock { $0[key] = loaded }
        cacheOrder.withLock { order in
            order.append(key)
            while order.count > cacheSize {
                let evicted = order.removeFirst()
                cache.withLock { _ = $0.removeValue(forKey: evicted) }
            }
        }
        return loaded
    }
}
