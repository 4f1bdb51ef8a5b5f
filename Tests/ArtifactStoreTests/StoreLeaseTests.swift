import Foundation
import Testing

@testable import ArtifactStore

@Suite struct StoreLeaseTests {
    @Test func oneHolderAtATimeAndATakeoverOnceItExpires() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-lease-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try ArtifactStore.open(at: dir.path)
        // Holders on another host: never known to be gone, so only the expiry frees the lease.
        let a = StoreLease(store: store, name: "scheduler", holder: "elsewhere-a:1", duration: 15)
        let b = StoreLease(store: store, name: "scheduler", holder: "elsewhere-b:2", duration: 15)
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(try a.renew(now: t0))
        #expect(try !b.renew(now: t0.addingTimeInterval(1)))
        #expect(try a.renew(now: t0.addingTimeInterval(10)))       // renewed: good until t0 + 25
        #expect(try !b.renew(now: t0.addingTimeInterval(20)))
        #expect(try b.renew(now: t0.addingTimeInterval(26)))        // expired: b takes over
        #expect(try !a.renew(now: t0.addingTimeInterval(27)))
        #expect(try b.current()?.holder == "elsewhere-b:2")
        // A clean release frees it at once; releasing a lease one does not hold changes nothing.
        try a.release()
        #expect(try !a.renew(now: t0.addingTimeInterval(28)))
        try b.release()
        #expect(try a.renew(now: t0.addingTimeInterval(29)))
    }

    @Test func aHolderOnThisHostThatIsGoneIsTakenOverAtOnce() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-lease-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try ArtifactStore.open(at: dir.path)
        let host = ProcessInfo.processInfo.hostName
        // A pid far above any this machine hands out.
        let gone = StoreLease(store: store, name: "scheduler", holder: "\(host):2147483000", duration: 3600)
        let live = StoreLease(store: store, name: "scheduler", holder: "\(host):\(getpid())", duration: 3600)
        #expect(try gone.renew())
        #expect(try live.renew())
        #expect(try live.current()?.holder == "\(host):\(getpid())")
        // A live holder on this host is not taken over.
        let other = StoreLease(store: store, name: "scheduler", holder: "\(host):2147483001", duration: 3600)
        #expect(try !other.renew())
    }
}
