import Synchronization
import TreeModel

/// The model the server answers with, swapped atomically.
///
/// A call takes the current `ServingModel` once and uses it to the end, so a swap never
/// changes a call's model halfway; the old model is freed when its last call finishes.
public final class ModelRegistry: Sendable {
    private let current = Mutex<ServingModel?>(nil)
    private let rolloutState = Mutex(Rollout())
    private let swaps = Atomic<Int>(0)

    public init(model: ServingModel? = nil) {
        current.withLock { $0 = model }
    }

    /// The model new calls should use, or nil before the first one is loaded.
    public var model: ServingModel? { current.withLock { $0 } }

    /// How many times the model has been replaced.
    public var swapCount: Int { swaps.load(ordering: .relaxed) }

    /// Warms `model` (so its first real call is not slow) and makes it current; returns the
    /// model it replaced.
    @discardableResult
    public func swap(to model: ServingModel) -> ServingModel? {
        Self.warm(model)
        let old = current.withLock { current in
            let old = current
            current = model
            return old
        }
        swaps.add(1, ordering: .relaxed)
        return old
    }

    /// The canary and shadow beside production (empty when no rollout runs).
    public var rollout: Rollout { rolloutState.withLock { $0 } }

    /// Replaces the rollout, warming any model it did not have yet.
    public func setRollout(_ rollout: Rollout) {
        let before = self.rollout
        for model in [rollout.canary, rollout.shadow].compactMap({ $0 })
        where model !== before.canary && model !== before.shadow {
            Self.warm(model)
        }
        rolloutState.withLock { $0 = rollout }
    }

    /// The model that answers a default-model call from `principal`: the canary for the partners
    /// in its share, production for everyone else (nil before a model is loaded).
    public func model(for principal: String) -> ServingModel? {
        let rollout = self.rollout
        if let canary = rollout.canary, CanaryRouting.inCanary(principal, percent: rollout.canaryPercent) {
            return canary
        }
        return model
    }

    /// Runs a few predictions through every tree, touching the model's memory before it serves.
    static func warm(_ model: ServingModel) {
        let features = Array(repeating: 1.0, count: model.ensemble.featureCount)
        _ = model.ensemble.rawScores(columns: features.map { [$0, $0 * 2, $0 / 2] })
    }
}

/// Versions running beside production: a canary answering a share of partners, and a shadow
/// scoring live traffic whose answers are only logged.
public struct Rollout: Sendable {
    public var canary: ServingModel?
    /// The share of partners (0–100) the canary answers.
    public var canaryPercent: Int
    public var shadow: ServingModel?

    public init(canary: ServingModel? = nil, canaryPercent: Int = 0, shadow: ServingModel? = nil) {
        self.canary = canary
        self.canaryPercent = canaryPercent
        self.shadow = shadow
    }
}

/// Which partners a canary answers. Sticky: a partner's bucket (0–99) is a hash of its name
/// alone, so its calls all go to one version, and raising the percentage only adds partners
/// (those already in the canary stay). The share is of partners, so the share of calls follows
/// their volumes.
public enum CanaryRouting {
    /// The partner's bucket, 0–99 (FNV-1a of its name: stable across processes and machines,
    /// unlike Swift's seeded `Hasher`).
    public static func bucket(_ principal: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in principal.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return Int(hash % 100)
    }

    /// Whether a canary answering `percent`% of partners answers `principal`.
    public static func inCanary(_ principal: String, percent: Int) -> Bool {
        bucket(principal) < percent
    }
}
