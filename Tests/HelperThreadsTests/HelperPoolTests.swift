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
    /// concurrency's threads. With `DispatchQueue.concurrentPerform` it did on Linux (its helpers
    /// are the root queue's threads, Swift concurrency's executor). So every task runs on the
    /// caller's thread or on one the pool started (named `loupe-helper`), never on a Dispatch or
    /// Swift concurrency thread. (An earlier form of this test waited for a detached task while
    /// the helpers spun; in the full parallel suite other tests keep the cooperative threads busy
    /// for longer than any wait, so it failed for reasons of its own.)
    @Test func tasksRunOnlyOnTheCallerAndThePoolsOwnThreads() async {
        let pool = HelperPool(helpers: 3)
        let strangers = Mutex<Set<String>>([])
        let caller = pthread_self()
        pool.run(tasks: 400, helpers: 3) { _ in
            usleep(200)  // time for every helper to claim some
            guard pthread_equal(pthread_self(), caller) == 0 else { return }
            let name = Self.thisThreadsName()
            if name != "loupe-helper" { strangers.withLock { $0.insert(name) } }
        }
        #expect(strangers.withLock { $0 } == [])
        // From a Swift concurrency thread, as a handler might call it: still only the pool's.
        await Task.detached {
            let from = pthread_self()
            pool.run(tasks: 400, helpers: 3) { _ in
                usleep(200)
                guard pthread_equal(pthread_self(), from) == 0 else { return }
                let name = Self.thisThreadsName()
                if name != "loupe-helper" { strangers.withLock { $0.insert(name) } }
            }
        }.value
        #expect(strangers.withLock { $0 } == [])
    }

    /// The kernel's name for the calling thread (Linux: /proc/thread-self/comm).
    static func thisThreadsName() -> String {
        guard let text = try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)
        else { return "?" }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
