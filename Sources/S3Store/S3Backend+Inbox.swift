import ArtifactStore
import Foundation

/// The store's own inbox, `s3://BUCKET/PREFIX/inbox/`: files taken by whichever server holds
/// the scheduler lease. An object appears only once its upload is complete, so a file is never
/// read half-written (a local folder needs the settle time for that).
extension S3Backend: SharedInbox {
    public var inboxLocation: String { "s3://\(configuration.bucket)/\(key("inbox/"))" }

    public func inboxFiles() throws -> [InboxFile] {
        let base = key("inbox/")
        return try listObjects(prefix: base, delimiter: true, "listing the inbox").objects.compactMap { object in
            let name = String(object.key.dropFirst(base.count))
            guard !name.isEmpty, !name.contains("/") else { return nil }
            return InboxFile(name: name, size: object.size, modified: object.modified)
        }.sorted { $0.name < $1.name }
    }

    public func readInboxFile(_ name: String) throws -> [UInt8] {
        let response = try expect(S3Request(.GET, key: key("inbox/" + name)), "reading inbox/\(name)", accepting: [404])
        guard response.status != 404 else { throw StoreError(.notFound, "inbox/\(name) is gone (taken by another server?)") }
        return response.body
    }

    public func moveInboxFile(_ name: String, to folder: String, as newName: String, note: String?) throws {
        try requireWritable()
        let source = key("inbox/" + name)
        let target = key("inbox/\(folder)/\(newName)")
        // S3 has no rename: copy, then delete the original.
        _ = try expect(
            S3Request(.PUT, key: target, headers: [
                ("x-amz-copy-source", "/\(configuration.bucket)/\(SigV4Signer.uriEncode(source, keepSlash: true))"),
            ]),
            "moving inbox/\(name) to inbox/\(folder)/")
        if let note {
            let bytes = Array(note.utf8)
            _ = try expect(
                S3Request(.PUT, key: target + ".error.txt",
                          headers: WriteChecksums(bytes).headers + [("content-type", "text/plain; charset=utf-8")], body: bytes),
                "writing inbox/\(folder)/\(newName).error.txt")
        }
        _ = try expect(S3Request(.DELETE, key: source), "removing inbox/\(name)", accepting: [404])
    }
}
