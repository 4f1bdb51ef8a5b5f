import Dispatch
import Foundation
import Synchronization

/// The appender's thread, and a way to await what it returns when it ends.
final class AppenderThread: Sendable {
    /// Taken alone (see the lock order in `RequestLog`).
    private let result = Mutex<[Appender.SealedFile]?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func start(nice: Int32, _ body: @escaping @Sendable () -> [Appender.SealedFile]) {
        let thread = Thread { [self] in
            makeThisThreadBackground(named: "loupe-appender", nice: nice)
            let sealed = body()
            result.withLock { $0 = sealed }
            done.signal()
        }
        thread.start()
    }

    /// Waits (without holding a cooperative thread) for the loop to end; returns its result.
    func finished() async -> [Appender.SealedFile] {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { [done] in
                done.wait()
                continuation.resume()
            }
        }
        return result.withLock { $0 ?? [] }
    }
}
