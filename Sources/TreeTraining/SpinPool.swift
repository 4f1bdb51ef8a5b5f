import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tiny fork-join pool for the trainer's inner loops: `threads − 1` worker threads that wait
/// for work by spinning briefly, then yielding, then napping.
///
/// A tree split hands out work every few microseconds; waking Dispatch's pool threads for each
/// hand-off cost more than the work saved (measured: 2 threads slower than 1), so workers stay
/// hot while training runs and the pool is torn down when the training run ends.
final class SpinPool: @unchecked Sendable {
    /// Threads that run tasks, including the caller of `run`.
    let threads: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    // Written by `run` before the generation is bumped (release) and read by workers after
    // they observe it (acquire); cleared only after every worker has reported done.
    private var job: ((Int) -> Void)?
    private var taskCount = 0
    private var handles: [pthread_t] = []

    init(threads: Int) {
        self.threads = max(1, threads)
        for worker in 1..<self.threads {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: worker))
            var handle = pthread_t()
            let rc = pthread_create(&handle, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool.workerLoop(index: start.index)
                return nil
            }, box.toOpaque())
            precondition(rc == 0, "cannot start a training thread (pthread_create: \(rc))")
            handles.append(handle)
        }
    }

    /// Stops and joins the workers.
    func shutdown() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        generation.add(1, ordering: .releasing)
        for handle in handles { pthread_join(handle, nil) }
        handles = []
    }

    deinit { shutdown() }

    /// Runs `body(0) … body(tasks − 1)` in parallel (task 0 on the caller) and returns when all are done.
    /// `tasks` must not exceed `threads`.
    func run(tasks: Int, _ body: (Int) -> Void) {
        precondition(tasks >= 1 && tasks <= threads)
        if tasks == 1 {
            body(0)
            return
        }
        withoutActuallyEscaping(body) { body in
            job = body
            taskCount = tasks
            // Every worker reports each generation, so none can lag into the next one.
            pending.store(threads - 1, ordering: .releasing)
            generation.add(1, ordering: .releasing)
            body(0)
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins > 1 << 16 { sched_yield() }
            }
            job = nil
        }
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins > 1 << 20 {
                    usleep(200)
                } else if spins > 1 << 14 {
                    sched_yield()
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            if index < taskCount, let job { job(index) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}

private final class WorkerStart {
    let pool: SpinPool
    let index: Int
    init(pool: SpinPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}
