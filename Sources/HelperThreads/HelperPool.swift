import CLoupeKernels
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Threads of Loupe's own that help score a batch (inference, explanations), shared by every
/// caller in the process.
///
/// Why not `DispatchQueue.concurrentPerform`: on Linux its helpers are the global root queue's
/// threads, which are also Swift concurrency's executor. A server scoring 100k-row batches held
/// them for the length of each batch, and its async work (a handshake's authentication, the
/// request log's writer, a gateway's health checks) waited behind the batch (measured: a fresh
/// client's handshake and Predict took 34–76 ms during back-to-back batches against 23 ms idle).
///
/// Work is claimed, not assigned: a caller posts its job for helpers and
/// runs it itself; a helper that is busy with another caller's job, asleep or descheduled
/// simply joins late or not at all, and the caller never waits for a helper that has not
/// started. Helpers sleep on a semaphore when there is nothing to do (no spinning: a server
/// is idle between calls).
///
/// Why there are two pools: the trainer uses `SpinPool` (TreeTraining), which claims tasks the
/// same way but whose workers spin between runs, one pool per training run. A tree split hands
/// out work every few microseconds, so waking a parked thread for each hand-off would cost
/// more than the work; a batch here lasts milliseconds and arrives at random, so spinning
/// would burn a core a server needs between calls. This pool is shared by every caller in the
/// process and takes concurrent `run`s; `SpinPool.run` is for one thread at a time.
public final class HelperPool: Sendable {
    /// The process's pool: a helper per core beyond the caller's own, started on first use.
    public static let shared = HelperPool(helpers: coreCount - 1)

    /// Online cores (at least 1).
    public static var coreCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    public let helpers: Int
    private let waiting = Mutex<[Job]>([])
    private let wake = DispatchSemaphore(value: 0)

    /// Starts the helper threads; they live as long as the process (the shared pool is never
    /// released; a pool made for a test keeps its sleeping helpers).
    public init(helpers: Int) {
        self.helpers = max(0, helpers)
        for _ in 0..<self.helpers {
            var handle = pthread_t()
            let rc = pthread_create(&handle, nil, { raw in
                let pool = Unmanaged<HelperPool>.fromOpaque(raw!).takeRetainedValue()
                loupe_name_this_thread("loupe-helper")
                pool.helperLoop()
                return nil
            }, Unmanaged.passRetained(self).toOpaque())
            precondition(rc == 0, "cannot start a helper thread (pthread_create: \(rc))")
            pthread_detach(handle)
        }
    }

    private func helperLoop() {
        while true {
            wake.wait()
            // One entry per signal; an entry whose caller has finished is skipped in `help`.
            if let job = waiting.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { job.help() }
        }
    }

    /// Runs `body(i)` for every i in 0..<tasks, each exactly once, on the calling thread and on
    /// up to `helpers` helpers, and returns when all are done. Any thread may call it, several
    /// at once.
    public func run(tasks: Int, helpers wanted: Int, _ body: (Int) -> Void) {
        let asked = min(wanted, helpers, tasks - 1)
        guard asked > 0 else {
            for i in 0..<tasks { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let job = Job(tasks: tasks, body: body)
            waiting.withLock { $0.append(contentsOf: repeatElement(job, count: asked)) }
            for _ in 0..<asked { wake.signal() }
            job.work()
            job.finish()
        }
    }

    /// One call's tasks, and who is inside it.
    ///
    /// `@unchecked Sendable`: `body` is read by helpers only between `join` and `leave`, and
    /// cleared by the caller only once `finish` has seen every helper leave and shut the door.
    private final class Job: @unchecked Sendable {
        private let tasks: Int
        private let next = Atomic<Int>(0)
        /// Helpers inside, plus `closed` once the caller has run out of tasks.
        private let inside = Atomic<Int>(0)
        private static let closed = 1 << 40
        private let allLeft = DispatchSemaphore(value: 0)
        private var body: ((Int) -> Void)?

        init(tasks: Int, body: @escaping (Int) -> Void) {
            self.tasks = tasks
            self.body = body
        }

        /// Claims and runs tasks until none are left.
        func work() {
            guard let body else { return }
            while true {
                let task = next.add(1, ordering: .relaxed).oldValue
                if task >= tasks { return }
                body(task)
            }
        }

        /// A helper's turn: joins unless the caller has already finished.
        func help() {
            var seen = inside.load(ordering: .acquiring)
            while true {
                if seen & Self.closed != 0 { return }
                let (exchanged, now) = inside.compareExchange(
                    expected: seen, desired: seen + 1, ordering: .acquiringAndReleasing)
                if exchanged { break }
                seen = now
            }
            work()
            if inside.subtract(1, ordering: .acquiringAndReleasing).newValue == Self.closed { allLeft.signal() }
        }

        /// The caller's end: shuts the door to helpers that have not joined, waits for those
        /// inside (they are finishing their last task), and lets go of `body`, which must not
        /// outlive the call.
        func finish() {
            if inside.bitwiseOr(Self.closed, ordering: .acquiringAndReleasing).oldValue != 0 { allLeft.wait() }
            body = nil
        }
    }
}
