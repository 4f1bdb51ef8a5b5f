import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Names this process as an owner of shared work (a job, a lease): `host:pid`, and tells
/// whether another owner is known to be gone.
public enum ProcessOwner {
    /// This process: `host:pid`.
    public static let current = "\(ProcessInfo.processInfo.hostName):\(getpid())"

    /// Whether the process `owner` names is known to be gone: on this host and no longer
    /// running (nil, a record made before owners were kept, counts as gone). An owner on
    /// another host is never known to be gone.
    public static func isGone(_ owner: String?) -> Bool {
        guard let owner else { return true }
        guard let colon = owner.lastIndex(of: ":"), owner[..<colon] == ProcessInfo.processInfo.hostName,
            let pid = Int32(owner[owner.index(after: colon)...])
        else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }
}
