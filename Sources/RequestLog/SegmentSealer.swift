import ArtifactStore
import Dispatch
import Foundation
import Logging
import Synchronization

/// Seals finished archive segments into the store on a thread of its own, so the appender
/// never waits on the store: an S3 store can be slow, or unreachable for minutes, and calls
/// must go on being recorded meanwhile.
///
/// A segment that cannot be sealed stays in `open/` — `loupe logs export` still reads it
/// there, and if the process dies the next start's recovery seals it — and is tried again
/// 1 s after the failure, the wait doubling up to `maximumBackoff`, until the store answers.
/// Segments are sealed in the order they were finished.
final class SegmentSealer: Sendable {
    private struct State {
        var waiting: [(segment: PayloadArchive.FinishedSegment, last: Int)] = []
        var sealed: [Appender.SealedFile] = []
        var closing = false
    }

    /// Last in the lock order (`RequestLog`): the appender's rounds take it inside theirs.
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private let directory: String
    private let store: ArtifactStore
    private let counters: RequestLogCounters
    private let logger: Logger
    private let maximumBackoff: Duration

    init(directory: String, store: ArtifactStore, counters: RequestLogCounters, logger: Logger,
         maximumBackoff: Duration = .seconds(30)) {
        self.directory = directory
        self.store = store
        self.counters = counters
        self.logger = logger
        self.maximumBackoff = maximumBackoff
    }

    func start(nice: Int32) {
        Thread { [self] in
            makeThisThreadBackground(named: "loupe-sealer", nice: nice)
            run()
            done.signal()
        }.start()
    }

    /// Queues a finished segment whose rows go up to sequence number `last`.
    func submit(_ segment: PayloadArchive.FinishedSegment, last: Int) {
        let waiting = state.withLock { state in
            state.waiting.append((segment, last))
            return state.waiting.count
        }
        counters.unsealed(waiting)
        wake.signal()
    }

    /// The local copies of the segments sealed since the last call.
    func takeSealed() -> [Appender.SealedFile] {
        state.withLock { state in
            defer { state.sealed.removeAll() }
            return state.sealed
        }
    }

    /// Tries each waiting segment once more, stops the thread and returns the local copies
    /// sealed since `takeSealed`. What still cannot be sealed stays in `open/` for the next start.
    func finish() -> [Appender.SealedFile] {
        state.withLock { $0.closing = true }
        wake.signal()
        done.wait()
        return takeSealed()
    }

    private func run() {
        var backoff = Duration.seconds(1)
        var failing = false
        while true {
            let (next, closing) = state.withLock { ($0.waiting.first, $0.closing) }
            guard let next else {
                if closing { return }
                wake.wait()
                continue
            }
            do {
                let kept = try PayloadArchive.sealAndKeep(next.segment, directory: directory, store: store)
                let waiting = state.withLock { state in
                    state.waiting.removeFirst()
                    state.sealed.append(Appender.SealedFile(path: kept, last: next.last))
                    return state.waiting.count
                }
                counters.unsealed(waiting)
                if failing {
                    logger.notice("the store answers again: sealing the archive segments that waited",
                                  metadata: ["waiting": "\(waiting + 1)"])
                    failing = false
                    backoff = .seconds(1)
                }
            } catch {
                if !failing {
                    // Once per outage: the gauge loupe_requestlog_unsealed_segments shows it goes on.
                    logger.error("could not seal a payload archive segment into the store; it stays on disk and is tried again until the store answers",
                                 metadata: ["segment": "\(next.segment.path)", "error": "\(error)"])
                    failing = true
                }
                if closing {
                    logger.warning("archive segments left unsealed at shutdown; the next start seals them",
                                   metadata: ["segments": "\(state.withLock { $0.waiting.count })"])
                    return
                }
                // New segments do not hurry the next try (they would only fail too); a shutdown does.
                let retry = DispatchTime.now() + backoff.seconds
                while DispatchTime.now() < retry, !state.withLock({ $0.closing }) { _ = wake.wait(timeout: retry) }
                backoff = min(backoff * 2, maximumBackoff)
            }
        }
    }
}
