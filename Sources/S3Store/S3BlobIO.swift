import ArtifactStore
import Crypto
import Foundation
import NIOHTTP1

/// One blob upload: bytes gather in memory up to the part size; a blob that stays within it
/// goes up in one conditional `PutObject` at commit, a larger one as a multipart upload to a
/// staging key, part by part as they fill (memory: one part), copied to its key at commit.
final class S3BlobUpload: BlobUpload {
    private let backend: S3Backend
    private var buffer: [UInt8] = []
    private var multipart: Multipart?
    private var total = 0
    private var done = false

    private struct Multipart {
        var key: String
        var uploadID: String
        var parts: [(number: Int, etag: String, md5: [UInt8])] = []
    }

    init(backend: S3Backend) {
        self.backend = backend
    }

    private var partSize: Int { backend.configuration.partSize }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !done else { throw StoreError(.io, "write to a finished upload in \(backend)") }
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, partSize - buffer.count)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]))
            offset += n
            total += n
            if buffer.count >= partSize { try uploadPart() }
        }
    }

    func commit(as digest: BlobDigest) throws -> Bool {
        guard !done else { throw StoreError(.io, "commit of a finished upload in \(backend)") }
        done = true
        do {
            if multipart == nil { return try putWhole(digest) }
            if !buffer.isEmpty { try uploadPart() }
            return try completeAndCopy(digest)
        } catch {
            abortMultipart()
            throw error
        }
    }

    func abort() {
        guard !done else { return }
        done = true
        abortMultipart()
    }

    deinit { abort() }

    // MARK: Small blobs

    /// `PutObject` with `If-None-Match: *` to the blob's own key.
    private func putWhole(_ digest: BlobDigest) throws -> Bool {
        let key = backend.blobKey(digest)
        let checksums = WriteChecksums(buffer)
        let request = S3Request(
            .PUT, key: key, headers: checksums.headers + [("if-none-match", "*"), ("content-type", "application/zstd")],
            body: buffer)
        for _ in 0..<2 {
            let response = try backend.expect(request, "writing blob \(digest)", accepting: [412])
            if response.status != 412 {
                if !checksums.confirmed(by: response.headers) {
                    try backend.verifyByReading(key, buffer, "writing blob \(digest)")
                }
                return true
            }
            // It exists: refresh its timestamp for gc's grace period. If it vanished in between
            // (collected), put ours after all.
            if try backend.touch(key, "confirming blob \(digest)") { return false }
        }
        throw StoreError(.io, "writing blob \(digest): it kept appearing and disappearing (a concurrent gc?)")
    }

    // MARK: Large blobs

    private func uploadPart() throws {
        if multipart == nil {
            let key = backend.key("tmp/\(backend.session)/\(S3Backend.randomHex(8)).blob")
            let response = try backend.expect(
                S3Request(.POST, key: key, query: [("uploads", "")], headers: [("content-type", "application/zstd")]),
                "starting a multipart upload")
            guard let id = XMLElement.parse(response.body)?["UploadId"] else {
                throw StoreError(.io, "starting a multipart upload to \(backend.client.describe(key)): no UploadId in the reply")
            }
            multipart = Multipart(key: key, uploadID: id)
        }
        guard var upload = multipart else { return }
        let number = upload.parts.count + 1
        let part = Array(buffer.prefix(partSize))
        let checksums = WriteChecksums(part)
        let response = try backend.expect(
            S3Request(
                .PUT, key: upload.key, query: [("partNumber", "\(number)"), ("uploadId", upload.uploadID)],
                headers: [("content-md5", checksums.md5Base64)], body: part),
            "uploading part \(number) of a blob")
        guard let etag = response.etag else {
            throw StoreError(.io, "uploading part \(number) to \(backend.client.describe(upload.key)): no ETag in the reply")
        }
        // A plain part's ETag is its MD5; KMS-encrypted ones are opaque (Content-MD5 still checked).
        let plain = unquoted(etag)
        if plain.count == 32, plain.allSatisfy(\.isHexDigit), plain != checksums.md5Hex,
            response.headers.first(name: "x-amz-server-side-encryption") != "aws:kms"
        {
            throw StoreError(.io, "uploading part \(number) to \(backend.client.describe(upload.key)): the stored part's ETag "
                + "\(plain) is not the MD5 of the bytes sent (\(checksums.md5Hex))")
        }
        upload.parts.append((number, etag, Array(Insecure.MD5.hash(data: part))))
        multipart = upload
        buffer.removeFirst(part.count)
    }

    /// Completes the staging upload, copies it to the blob's key unless that exists, checks
    /// the result's size and removes the staging object.
    private func completeAndCopy(_ digest: BlobDigest) throws -> Bool {
        guard let upload = multipart else { return false }
        let parts = upload.parts.map { "<Part><PartNumber>\($0.number)</PartNumber><ETag>\($0.etag.xmlEscaped)</ETag></Part>" }
        let xml = "<CompleteMultipartUpload>\(parts.joined())</CompleteMultipartUpload>"
        let response = try backend.expect(
            S3Request(
                .POST, key: upload.key, query: [("uploadId", upload.uploadID)],
                headers: [("content-type", "application/xml")], body: Array(xml.utf8)),
            "completing the upload of blob \(digest)")
        // A multipart ETag is the MD5 of the parts' MD5s, then `-<count>`: check it when it has that form.
        if let etag = XMLElement.parse(response.body)?["ETag"] ?? response.etag {
            let composite = SigV4Signer.hex(Insecure.MD5.hash(data: upload.parts.flatMap(\.md5))) + "-\(upload.parts.count)"
            let plain = unquoted(etag)
            if plain.contains("-"), plain != composite {
                throw StoreError(.io, "completing the upload of blob \(digest): ETag \(plain) does not match the parts sent (\(composite))")
            }
        }
        multipart = nil  // completed: no longer abortable, only deletable
        defer { _ = try? backend.send(S3Request(.DELETE, key: upload.key), "removing a staging upload") }
        let key = backend.blobKey(digest)
        let copy = try backend.expect(
            S3Request(
                .PUT, key: key,
                headers: [
                    ("x-amz-copy-source", "/\(backend.configuration.bucket)/\(SigV4Signer.uriEncode(upload.key, keepSlash: true))"),
                    ("if-none-match", "*"),
                ]),
            "writing blob \(digest)", accepting: [412])
        if copy.status == 412 {
            // It exists: refresh its timestamp for gc's grace period.
            guard try backend.touch(key, "confirming blob \(digest)") else {
                throw StoreError(.io, "writing blob \(digest): it existed, then vanished before it could be confirmed (a concurrent gc?)")
            }
            return false
        }
        guard let info = try backend.objectInfo(key, "checking blob \(digest)"), info.size == Int64(total) else {
            throw StoreError(.io, "writing blob \(digest): \(backend.location(of: digest)) does not hold the \(total) bytes copied")
        }
        return true
    }

    private func abortMultipart() {
        guard let upload = multipart else { return }
        multipart = nil
        _ = try? backend.send(
            S3Request(.DELETE, key: upload.key, query: [("uploadId", upload.uploadID)]), "aborting a multipart upload")
    }
}

/// A blob read as it arrives. A connection that drops mid-body is resumed where it stopped
/// (`Range` with `If-Match` on the ETag, so the rest comes from the same object).
final class S3BlobSource: BlobSource {
    private let backend: S3Backend
    private let digest: BlobDigest
    private let key: String
    private var stream: StreamingResponse
    private let etag: String?
    private var delivered: Int64 = 0
    private var resumes = 0

    init(backend: S3Backend, digest: BlobDigest, key: String, stream: StreamingResponse, etag: String?) {
        self.backend = backend
        self.digest = digest
        self.key = key
        self.stream = stream
        self.etag = etag
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            do {
                let n = try stream.read(into: buffer)
                delivered += Int64(n)
                return n
            } catch {
                guard S3Client.isTransient(error), let etag, resumes + 1 < backend.configuration.maxAttempts else {
                    throw StoreError(.io, "reading blob \(digest) from \(backend.location(of: digest)): "
                        + backend.client.scrub(S3Client.describeTransportError(error, endpoint: backend.configuration.endpointDescription)))
                }
                resumes += 1
                stream.cancel()
                let opened: (StreamingResponse, HTTPResponseHead)?
                do {
                    opened = try backend.client.openObject(key, headers: [("range", "bytes=\(delivered)-"), ("if-match", etag)])
                } catch let error as S3Error {
                    throw backend.fail(error, "resuming the read of blob \(digest)")
                }
                guard let (next, head) = opened, head.status == .partialContent else {
                    throw StoreError(.io, "reading blob \(digest): \(backend.location(of: digest)) changed or vanished mid-read")
                }
                stream = next
            }
        }
    }

    deinit { stream.cancel() }
}
