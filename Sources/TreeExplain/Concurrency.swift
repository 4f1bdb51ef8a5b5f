import Foundation
import Synchronization

/// Hands out chunk numbers to the threads of a batch.
final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)
    func claim() -> Int { value.add(1, ordering: .relaxed).oldValue }
}

/// A pointer into a buffer that the threads of one batch write disjoint rows of.
struct UnsafeSendablePointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Double>?
    init(_ pointer: UnsafeMutablePointer<Double>?) { self.pointer = pointer }
}

enum System {
    static let coreCount = max(1, ProcessInfo.processInfo.activeProcessorCount)
}
