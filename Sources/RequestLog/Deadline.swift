import NIOCore
import Synchronization

/// Runs `body`, or throws `DeadlineError` when it takes longer than `timeout`. A body that
/// ignores cancellation (a hung database call) is left to finish in the background.
func withDeadline<T: Sendable>(_ timeout: TimeAmount, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let once = ClaimOnce()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let timer = Task {
            try await Task.sleep(nanoseconds: UInt64(max(0, timeout.nanoseconds)))
            if once.claim() {
                continuation.resume(throwing: DeadlineError(milliseconds: timeout.nanoseconds / 1_000_000))
            }
        }
        Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            timer.cancel()
            if once.claim() { continuation.resume(with: result) }
        }
    }
}

/// A database call that did not answer in time.
struct DeadlineError: Error, CustomStringConvertible {
    var milliseconds: Int64
    var description: String { "no answer within \(milliseconds) ms" }
}

/// True for the first caller of `claim` only.
final class ClaimOnce: Sendable {
    private let flag = Atomic<Bool>(false)
    func claim() -> Bool { !flag.exchange(true, ordering: .acquiringAndReleasing) }
}
