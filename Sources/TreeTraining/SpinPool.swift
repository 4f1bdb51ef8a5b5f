import CLoupeKernels
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small fork-join pool for the trainer's inner loops, built to lose nothing when cores
/// are busy with other work.
///
/// A tree split hands out work every few microseconds: waking Dispatch's threads for each
/// hand-off cost more than the work saved (measured: 2 threads slower than 1), and a pool
/// that waits for its workers stalls whenever the OS has lent their core to another process
/// (a server answering calls while it retrains). So tasks are *claimed*, not assigned: the
/// caller of `run` claims and runs tasks too, and only waits for tasks another thread has
/// already started. A worker that is asleep or descheduled simply gets no tasks; the caller
/// does them all. Idle workers spin briefly, then yield, then sleep on a condition variable.
///
/// Which task a thread runs varies, so callers that need deterministic results give every
/// task its own output (e.g. one histogram per task) and combine them in task order.
///
/// Why there are two pools: serving scores on `HelperPool` (HelperThreads), whose helpers are
/// shared by the whole process, take concurrent callers and park on a semaphore between
/// batches, which suits millisecond batches at random times. Here a run lasts microseconds
/// and the next follows at once, so parked workers would be woken thousands of times a second,
/// the cost that ruled out Dispatch above; the pool belongs to one training run, is driven by
/// one thread, and is shut down when training ends.
final class SpinPool: @unchecked Sendable {
    /// Threads that can run tasks, including the caller of `run`.
    let threads: Int

    /// generation (32 bits) | task count (16 bits) | next unclaimed task (16 bits). Claiming
    /// is a compare-and-swap on the whole word, so a late worker can never claim a task of a
    /// run that has finished.
    private let claim = Atomic<UInt64>(0)
    private let finished = Atomic<Int>(0)
    /// The current run's `JobBox`, retained by the pool while the run lasts.
    private let job = Atomic<UInt>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeUp = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var generation: UInt64 = 0
    private var handles: [pthread_t] = []

    private final class JobBox {
        let body: (Int) -> Void
        init(_ body: @escaping (Int) -> Void) { self.body = body }
    }

    init(threads: Int) {
        self.threads = max(1, threads)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wakeUp, nil)
        for _ in 1..<self.threads {
            let start = Unmanaged.passRetained(self).toOpaque()
            var handle = pthread_t()
            let rc = pthread_create(&handle, nil, { raw in
                let pool = Unmanaged<SpinPool>.fromOpaque(raw!).takeRetainedValue()
                pool.workerLoop()
                return nil
            }, start)
            precondition(rc == 0, "cannot start a training thread (pthread_create: \(rc))")
            handles.append(handle)
        }
    }

    /// Stops and joins the workers. Call once training is done (workers hold the pool alive).
    func shutdown() {
        guard !stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        generation += 1
        claim.store(generation << 32, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(wakeUp)
        pthread_mutex_unlock(mutex)
        for handle in handles { pthread_join(handle, nil) }
        handles = []
    }

    deinit {
        pthread_cond_destroy(wakeUp)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        wakeUp.deallocate()
    }

    /// Runs `body(0) … body(tasks − 1)`, each exactly once, on this thread and any idle
    /// workers, and returns when all are done. Not reentrant; call from one thread.
    func run(tasks: Int, _ body: @escaping (Int) -> Void) {
        precondition(tasks >= 0 && tasks < 1 << 16)
        if tasks == 0 { return }
        if tasks == 1 || threads == 1 {
            for i in 0..<tasks { body(i) }
            return
        }
        let box = Unmanaged.passRetained(JobBox(body))
        job.store(UInt(bitPattern: box.toOpaque()), ordering: .releasing)
        finished.store(0, ordering: .relaxed)
        generation = (generation + 1) & 0xFFFF_FFFF
        claim.store(generation << 32 | UInt64(tasks) << 16, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(wakeUp)
            pthread_mutex_unlock(mutex)
        }
        var mine = 0
        while let task = claimTask(generation: generation) {
            body(task)
            mine += 1
        }
        finished.add(mine, ordering: .releasing)
        // Only tasks another thread has claimed (and so is running) remain.
        while finished.load(ordering: .acquiring) < tasks { loupe_cpu_relax() }
        job.store(0, ordering: .relaxed)
        box.release()
    }

    /// Claims the next task of `generation`, or nil when all are claimed or the run is over.
    private func claimTask(generation expected: UInt64) -> Int? {
        var word = claim.load(ordering: .acquiring)
        while true {
            let generation = word >> 32
            let count = (word >> 16) & 0xFFFF
            let next = word & 0xFFFF
            guard generation == expected, next < count else { return nil }
            let (exchanged, current) = claim.compareExchange(
                expected: word, desired: word + 1, ordering: .acquiringAndReleasing)
            if exchanged { return Int(next) }
            word = current
        }
    }

    private func workerLoop() {
        var seen: UInt64 = 0
        while true {
            // Wait for a run we have not finished with.
            var spins = 0
            var word = claim.load(ordering: .acquiring)
            while word >> 32 == seen || word & 0xFFFF >= (word >> 16) & 0xFFFF {
                if stopping.load(ordering: .relaxed) { return }
                seen = word >> 32
                spins += 1
                if spins < 20_000 {
                    loupe_cpu_relax()
                } else if spins < 22_000 {
                    sched_yield()
                } else {
                    sleep(whileClaimWordIs: word)
                    spins = 0
                }
                word = claim.load(ordering: .acquiring)
            }
            if stopping.load(ordering: .relaxed) { return }
            let generation = word >> 32
            var done = 0
            while let task = claimTask(generation: generation) {
                // The run cannot end (nor its job change) while a claimed task is unfinished.
                let box = Unmanaged<JobBox>.fromOpaque(UnsafeRawPointer(bitPattern: job.load(ordering: .acquiring))!)
                box.takeUnretainedValue().body(task)
                done += 1
            }
            finished.add(done, ordering: .releasing)
            seen = generation
        }
    }

    private func sleep(whileClaimWordIs word: UInt64) {
        pthread_mutex_lock(mutex)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        while claim.load(ordering: .sequentiallyConsistent) == word && !stopping.load(ordering: .sequentiallyConsistent) {
            pthread_cond_wait(wakeUp, mutex)
        }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(mutex)
    }
}
