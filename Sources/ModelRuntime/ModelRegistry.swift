import Synchronization
import TreeModel

/// The model the server answers with, swapped atomically.
///
/// A call takes the current `ServingModel` once and uses it to the end, so a swap never
/// changes a call's model halfway; the old model is freed when its last call finishes.
public final class ModelRegistry: Sendable {
    private let current = Mutex<ServingModel?>(nil)
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

    /// Runs a few predictions through every tree, touching the model's memory before it serves.
    static func warm(_ model: ServingModel) {
        let features = Array(repeating: 1.0, count: model.ensemble.featureCount)
        _ = model.ensemble.rawScores(columns: features.map { [$0, $0 * 2, $0 / 2] })
    }
}
