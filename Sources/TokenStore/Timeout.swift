import NIOCore
import Synchronization

/// Runs `body`, or throws `TimeoutError` when it takes longer than `timeout`. A body that
/// ignores cancellation (a hung database call) is left to finish in the background: the
/// caller gets its answer on time either way.
public func withTimeout<T: Sendable>(_ timeout: TimeAmount, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let once = Once()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let timer = Task {
            try await Task.sleep(nanoseconds: UInt64(max(0, timeout.nanoseconds)))
            if once.claim() { continuation.resume(throwing: TimeoutError(timeout: timeout)) }
        }
        Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            timer.cancel()
            if once.claim() { continuation.resume(with: result) }
        }
    }
}

/// True for the first caller of `claim` only.
final class Once: Sendable {
    init() {}
    private let flag = Atomic<Bool>(false)
    func claim() -> Bool { !flag.exchange(true, ordering: .acquiringAndReleasing) }
}

/// A store call that did not answer in time.
public struct TimeoutError: Error, CustomStringConvertible {
    /// How long it waited.
    public var timeout: TimeAmount
    public var description: String { "no answer within \(timeout.nanoseconds / 1_000_000) ms" }
}
