import Foundation

/// A store with an inbox of its own: files people drop under `inbox/` in the store itself (an
/// S3 bucket every machine reaches: `aws s3 cp sold.csv s3://BUCKET/PREFIX/inbox/`), so
/// whichever server holds the scheduler lease takes them, and a new leader finds what the last
/// one left. A local directory store needs none: its `inbox/` is a folder on its one machine.
public protocol SharedInbox: Sendable {
    /// The files directly under `inbox/` (not those in `processed/` or `failed/`).
    func inboxFiles() throws -> [InboxFile]
    /// A file's bytes.
    func readInboxFile(_ name: String) throws -> [UInt8]
    /// Moves a file to `inbox/<folder>/<newName>`; with a note, writes it beside the file as
    /// `<newName>.error.txt`.
    func moveInboxFile(_ name: String, to folder: String, as newName: String, note: String?) throws
    /// Where the inbox is, for messages: `s3://BUCKET/PREFIX/inbox/`.
    var inboxLocation: String { get }
}

/// A file in a shared inbox.
public struct InboxFile: Sendable, Hashable {
    public var name: String
    public var size: Int64
    public var modified: Date

    public init(name: String, size: Int64, modified: Date) {
        self.name = name
        self.size = size
        self.modified = modified
    }
}
