import ArtifactStore
import Foundation

/// Where the scheduler's inbox is: a folder (`<store>/inbox` of a local directory store), or
/// the store's own `inbox/` when it is shared by several machines (S3), so whichever server
/// leads takes the files. Each file is taken once, then moved to `processed/` or, with the
/// reason beside it, to `failed/`; nothing is deleted.
enum InboxSource: Sendable {
    case folder(String)
    case shared(any SharedInbox)

    /// The CSV files ready to take, by name. A file in a folder must have stopped changing for
    /// `settle` (it may still be being copied in); an object store shows only whole objects.
    func ready(now: Date, settle: Duration) throws -> [String] {
        switch self {
        case .folder(let path):
            return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
                .filter { $0.lowercased().hasSuffix(".csv") }.sorted()
                .filter { name in
                    guard let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + name),
                        let modified = attributes[.modificationDate] as? Date
                    else { return false }
                    return now.timeIntervalSince(modified) >= settle.seconds
                }
        case .shared(let inbox):
            return try inbox.inboxFiles().map(\.name).filter { $0.lowercased().hasSuffix(".csv") }
        }
    }

    func read(_ name: String) throws -> [UInt8] {
        switch self {
        case .folder(let path): [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + "/" + name)))
        case .shared(let inbox): try inbox.readInboxFile(name)
        }
    }

    /// Moves a taken file to `processed/<newName>`.
    func processed(_ name: String, as newName: String) throws {
        switch self {
        case .folder(let path): try FileManager.default.moveItem(atPath: "\(path)/\(name)", toPath: "\(path)/processed/\(newName)")
        case .shared(let inbox): try inbox.moveInboxFile(name, to: "processed", as: newName, note: nil)
        }
    }

    /// Moves a file that could not be ingested to `failed/<newName>`, the reason beside it.
    func failed(_ name: String, as newName: String, reason: String) {
        switch self {
        case .folder(let path):
            let failed = "\(path)/failed/\(newName)"
            try? FileManager.default.moveItem(atPath: "\(path)/\(name)", toPath: failed)
            try? Data(reason.utf8).write(to: URL(fileURLWithPath: failed + ".error.txt"))
        case .shared(let inbox):
            try? inbox.moveInboxFile(name, to: "failed", as: newName, note: reason)
        }
    }

    /// For messages and the status.
    var location: String {
        switch self {
        case .folder(let path): path
        case .shared(let inbox): inbox.inboxLocation
        }
    }
}
