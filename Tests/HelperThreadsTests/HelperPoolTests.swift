import Foundation
import HelperThreads
import Synchronization
import Testing

@Suite struct HelperPoolTests {
    /// How many times each task ran.
    final class Tally: Sendable {
        let counts: Mutex<[Int]>
        init(_ tasks: Int) { counts = Mutex(Array(repeating: 0, count: tasks)) }
        func ran(_ task: Int) { counts.withLock { $0[task] += 1 } }
        var eachOnce: Bool { counts.withLock { $0.allSatisfy { $0 == 1 } } }
    }

    @Test(arguments: [0, 1, 2, 7, 1_000])
    func everyTaskRunsExactlyOnce(tasks: Int) {
        let pool = HelperPool(helpers: 3)
        for wanted in [0, 1, 3, 8] {
            let tally = Tally(tasks)
            pool.run(tasks: tasks, helpers: wanted) { tally.ran($0) }
            #expect(tally.eachOnce, "tasks \(tasks), helpers wanted \(wanted)")
        }
    }

    @Test func helpersTakeTasksOffTheCaller() {
        let pool = HelperPool(helpers: 2)
        let caller = pthread_self()
        let elsewhere = Atomic<Int>(0)
        // Tasks that sleep: a helper woken for the job has time to claim some.
        pool.run(tasks: 200, helpers: 2) { _ in
            if pthread_equal(pthread_self(), caller) == 0 { elsewhere.add(1, ordering: .relaxed) }
            usleep(500)
        }
        #expect(elsewhere.load(ordering: .relaxed) > 0)
    }

    @Test func severalCallersAtOnceEachGetAllTheirTasks() async {
        let pool = HelperPool(helpers: 2)
        let tallies = (0..<8).map { _ in Tally(500) }
        await withTaskGroup(of: Void.self) { group in
            for tally in tallies {
                group.addTask {
                    // From threads of their own, as event loops call it.
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        Thread {
                            pool.run(tasks: 500, helpers: 2) { task in
                                tally.ran(task)
                                if task % 50 == 0 { usleep(100) }
                            }
                            done.resume()
                        }.start()
                    }
                }
            }
        }
        #expect(tallies.allSatisfy { $0.eachOnce })
    }

    /// The reason for the pool: a batch that keeps every helper busy must not hold up Swift
    /// concurrency's threads (with `DispatchQueue.concurrentPerform` it did on Linux: both
    /// draw on the root queue's threads). Here the batches only finish once a detached task
    /// has run, so if they held its threads this would run out its 30 s and fail.
    @Test func busyHelpersLeaveSwiftConcurrencyItsThreads() async {
        let pool = HelperPool(helpers: HelperPool.coreCount)
        let released = Atomic<Bool>(false)
        let timedOut = Atomic<Int>(0)
        let callers = max(2, HelperPool.coreCount)
        let started = Atomic<Int>(0)
        let finished = DispatchGroup()
        for _ in 0..<callers {
            finished.enter()
            Thread {
                pool.run(tasks: 2 * callers, helpers: HelperPool.coreCount) { _ in
                    started.add(1, ordering: .relaxed)
                    let deadline = Date().addingTimeInterval(30)
                    while !released.load(ordering: .acquiring) {
                        if Date() > deadline {
                            timedOut.add(1, ordering: .relaxed)
                            return
                        }
                        // Spinning, as scoring does: a sleeping thread lets Dispatch start another.
                    }
                }
                finished.leave()
            }.start()
        }
        while started.load(ordering: .relaxed) < callers { usleep(1_000) }
        await Task.detached { released.store(true, ordering: .releasing) }.value
        finished.wait()
        #expect(timedOut.load(ordering: .relaxed) == 0)
    }
}
