import Foundation
import NIOCore

/// The binary form of guestbook rows and payload archive records (inside zstd frames): little-endian
/// fixed-width numbers, length-prefixed strings and bytes, a version byte first. Hand-written
/// rather than JSON because the writer encodes every call.
enum RecordCodec {
    static let rowVersion: UInt8 = 1
    static let recordVersion: UInt8 = 1

    private static func write(_ row: GuestbookRow, to w: inout ByteWriter) {
        w.u8(rowVersion)
        w.string(row.id)
        w.i64(row.atMilliseconds)
        w.i64(row.requestID)
        w.string(row.principal)
        w.optionalString(row.tokenID)
        w.string(row.method)
        w.optionalString(row.modelName)
        w.i64(Int64(row.modelVersion ?? -1))
        w.i64(Int64(row.rows))
        w.i64(row.latencyMicroseconds)
        w.string(row.status)
        w.optionalString(row.error)
        if let d = row.diamond {
            w.u8(1)
            w.f64(d.carat)
            w.string(d.cut)
            w.string(d.color)
            w.string(d.clarity)
            // Field by field: an array literal here would be an allocation per call on the appender.
            w.f64(d.depth)
            w.f64(d.table)
            w.f64(d.x)
            w.f64(d.y)
            w.f64(d.z)
        } else {
            w.u8(0)
        }
        w.optionalF64(row.price)
        w.optionalF64(row.low)
        w.optionalF64(row.high)
        w.optionalF64(row.level)
    }

    static func decodeRow(_ r: inout ByteReader) throws -> GuestbookRow {
        guard try r.u8() == rowVersion else { throw r.failure("unknown row version") }
        let id = try r.string()
        let at = try r.i64()
        let requestID = try r.i64()
        let principal = try r.string()
        let tokenID = try r.optionalString()
        let method = try r.string()
        let modelName = try r.optionalString()
        let version = try r.i64()
        let rows = try r.i64()
        let latency = try r.i64()
        let status = try r.string()
        let error = try r.optionalString()
        var diamond: LoggedDiamond?
        if try r.u8() == 1 {
            let carat = try r.f64()
            let cut = try r.string(), color = try r.string(), clarity = try r.string()
            let depth = try r.f64(), table = try r.f64(), x = try r.f64(), y = try r.f64(), z = try r.f64()
            diamond = LoggedDiamond(carat: carat, cut: cut, color: color, clarity: clarity, depth: depth, table: table,
                                    x: x, y: y, z: z)
        }
        let price = try r.optionalF64(), low = try r.optionalF64(), high = try r.optionalF64(), level = try r.optionalF64()
        return GuestbookRow(
            id: id, atMilliseconds: at, requestID: requestID, principal: principal, tokenID: tokenID, method: method,
            modelName: modelName, modelVersion: version < 0 ? nil : Int(version), rows: Int(rows),
            latencyMicroseconds: latency, status: status, error: error, diamond: diamond, price: price, low: low,
            high: high, level: level)
    }

    /// A call's archive record straight from its frames' buffers into `out` (the payloads are
    /// copied once, into the record): the row, then the request and response payloads.
    static func encode(_ call: CallRecord, row: GuestbookRow, into out: inout [UInt8]) {
        let empty = ByteBuffer()
        (call.request?.payload ?? empty).withUnsafeReadableBytes { request in
            call.response.payload.withUnsafeReadableBytes { response in
                encodeRecord(row: row, responseIsError: call.response.header.flags.contains(.error), request: request,
                             response: response, into: &out)
            }
        }
    }

    static func encodeRecord(
        row: GuestbookRow, responseIsError: Bool, request: UnsafeRawBufferPointer, response: UnsafeRawBufferPointer,
        into out: inout [UInt8]
    ) {
        out.reserveCapacity(out.count + 256 + request.count + response.count)
        ByteWriter.append(to: &out) { w in
            w.u8(recordVersion)
            write(row, to: &w)
            w.u8(responseIsError ? 1 : 0)
            w.bytes(request)
            w.bytes(response)
        }
    }

    static func decodeRecord(_ bytes: [UInt8]) throws -> ArchivedCall {
        var r = ByteReader(bytes)
        guard try r.u8() == recordVersion else { throw r.failure("unknown record version") }
        let row = try decodeRow(&r)
        let isError = try r.u8() == 1
        let request = try r.byteArray()
        let response = try r.byteArray()
        return ArchivedCall(row: row, request: request, response: response, responseIsError: isError)
    }

    /// Several rows (a spill batch).
    static func encode(rows: [GuestbookRow]) -> [UInt8] {
        var out: [UInt8] = []
        ByteWriter.append(to: &out) { w in
            w.i64(Int64(rows.count))
            for row in rows { write(row, to: &w) }
        }
        return out
    }

    static func decodeRows(_ bytes: [UInt8]) throws -> [GuestbookRow] {
        var r = ByteReader(bytes)
        let count = try r.i64()
        guard count >= 0, count <= bytes.count else { throw r.failure("bad row count \(count)") }
        return try (0..<Int(count)).map { _ in try decodeRow(&r) }
    }
}

struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    /// Writes at the end of `out`, in place: the writer takes `out`'s buffer for the duration
    /// (a second reference would make the first append copy the whole array).
    static func append(to out: inout [UInt8], _ body: (inout ByteWriter) -> Void) {
        var writer = ByteWriter()
        swap(&writer.bytes, &out)
        body(&writer)
        swap(&writer.bytes, &out)
    }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func f64(_ v: Double) { i64(Int64(bitPattern: v.bitPattern)) }
    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }  // native strings: no copy
    }
    mutating func bytes(_ b: UnsafeRawBufferPointer) {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }
    mutating func optionalString(_ s: String?) {
        if let s { u8(1); string(s) } else { u8(0) }
    }
    mutating func optionalF64(_ v: Double?) {
        if let v { u8(1); f64(v) } else { u8(0) }
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func failure(_ what: String) -> RequestLogError {
        RequestLogError(.corrupt, "\(what) at byte \(offset) of a \(bytes.count)-byte record")
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, offset + n <= bytes.count else { throw failure("record ends early") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }
    mutating func u8() throws -> UInt8 { try take(1).first! }
    mutating func i64() throws -> Int64 {
        var v: UInt64 = 0
        for (i, b) in try take(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return Int64(bitPattern: v)
    }
    mutating func u32() throws -> UInt32 {
        var v: UInt32 = 0
        for (i, b) in try take(4).enumerated() { v |= UInt32(b) << (8 * UInt32(i)) }
        return v
    }
    mutating func f64() throws -> Double { Double(bitPattern: UInt64(bitPattern: try i64())) }
    mutating func byteArray() throws -> [UInt8] { Array(try take(Int(try u32()))) }
    mutating func string() throws -> String { String(decoding: try byteArray(), as: UTF8.self) }
    mutating func optionalString() throws -> String? { try u8() == 1 ? try string() : nil }
    mutating func optionalF64() throws -> Double? { try u8() == 1 ? try f64() : nil }
}
