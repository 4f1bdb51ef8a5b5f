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
    let logger: Logger
    private let metrics: ServerMetrics?
    private let unloadable = Mutex<Unloadable?>(nil)
    /// Each version's calls since it took its current role (reset when it becomes production
    /// or the canary, so it is judged on its own calls in that role).
    let liveStats = LiveCallStats()
    /// Canary or shadow versions (`alias@version`) that failed to load, so each is logged once.
    private let failedRollout = Mutex<Set<String>>([])
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
    /// already, and follows its canary and shadow; returns true when production swapped. Called
    /// at start and on every poll.
    @discardableResult
    func refreshProduction() throws -> Bool {
        let aliases = try catalog.store.aliases(name: defaultModel)
        refreshRollout(aliases)
        let manifest: ModelManifest
        if let production = aliases.production {
            manifest = try catalog.store.model(name: defaultModel, version: production)
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
        liveStats.reset(version: manifest.version)
        let old = registry.swap(to: model)
        logger.info("serving model", metadata: [
            "model": "\(manifest.name)", "version": "\(manifest.version)",
            "replaced": "\(old.map { String($0.version) } ?? "none")",
        ])
        return true
    }

    /// Loads the canary and shadow the aliases name (keeping models already loaded) and hands
    /// them to the registry. A version that does not load is logged once and left out: the
    /// calls it would have had go to production.
    private func refreshRollout(_ aliases: AliasRecord) {
        let before = registry.rollout
        func resolve(_ alias: ModelAlias, _ have: ServingModel?) -> ServingModel? {
            guard let version = aliases[alias] else { return nil }
            if let have, have.version == version { return have }
            if let production = registry.model, production.name == defaultModel, production.version == version {
                return production
            }
            if failedRollout.withLock({ $0.contains("\(alias)@\(version)") }) { return nil }
            do {
                let model = try load(try catalog.store.model(name: defaultModel, version: version))
                logger.info("\(alias) started", metadata: [
                    "model": "\(defaultModel)", "version": "\(version)",
                    "percent": "\(alias == .canary ? aliases.canaryPercent ?? 0 : 0)",
                ])
                return model
            } catch {
                failedRollout.withLock { _ = $0.insert("\(alias)@\(version)") }
                logger.error("\(alias) version cannot be loaded; production answers its calls", metadata: [
                    "model": "\(defaultModel)", "version": "\(version)", "error": "\(error)",
                ])
                return nil
            }
        }
        let rollout = Rollout(
            canary: resolve(.canary, before.canary), canaryPercent: aliases.canaryPercent ?? 0,
            shadow: resolve(.shadow, before.shadow))
        for (alias, was, now) in [(ModelAlias.canary, before.canary, rollout.canary), (.shadow, before.shadow, rollout.shadow)]
        where was != nil && was?.version != now?.version {
            logger.info("\(alias) ended", metadata: ["model": "\(defaultModel)", "version": "\(was!.version)"])
        }
        if rollout.canary !== before.canary || rollout.shadow !== before.shadow || rollout.canaryPercent != before.canaryPercent {
            if let canary = rollout.canary, canary !== before.canary { liveStats.reset(version: canary.version) }
            registry.setRollout(rollout)
        }
        metrics?.rollout(canary: rollout.canary?.version, percent: rollout.canaryPercent, shadow: rollout.shadow?.version)
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
