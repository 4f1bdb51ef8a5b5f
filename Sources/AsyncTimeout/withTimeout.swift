import NIOCore
import Synchronization

/// Runs `body`, or throws `TimeoutError` when it takes longer than `timeout`. A body that
/// ignores cancellation (a hung database call) is left to finish in the background: the
/// caller gets its answer on time either way.
public func withTimeout<T: Sendable>(_ timeout: TimeAmount, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let once = ClaimOnce()
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

/// True for the first caller of `claim` only: whichever of the body and the timer ends first
/// resumes the caller.
private final class ClaimOnce: Sendable {
    private let flag = Atomic<Bool>(false)
    func claim() -> Bool { !flag.exchange(true, ordering: .acquiringAndReleasing) }
}
