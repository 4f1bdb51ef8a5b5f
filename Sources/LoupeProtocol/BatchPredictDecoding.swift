import DiamondSchema
import NIOCore
import SwiftProtobuf

// A hand-written reader for the one large request, BatchPredict, on the server. SwiftProtobuf
// decodes a packed double column one element at a time and repeated enums through generic code
// (a witness call and a 9-byte enum per element), and the server then mapped the enums to
// feature codes in another pass. This reads the packed columns straight into feature columns:
// doubles with one copy, grades mapped to codes as their varints are read.
//
// It takes only the encoding every encoder produces for these columns (each field packed,
// known field numbers); anything else — unpacked elements, unknown fields inside the columns,
// the rows field twice, a malformed payload — goes through SwiftProtobuf as before, so the
// accepted messages, their meaning and the error messages are exactly SwiftProtobuf's (a test
// holds the two equal).

/// A BatchPredict request as the server scores it.
public struct BatchPredictInput: Sendable {
    /// The request without its rows (model, level, explain).
    public var request: Loupe_V1_BatchPredictRequest
    /// Feature columns in `Feature` order (`columns[f][row]`): measurements as sent, grades as
    /// ordinal codes, a missing or unknown grade NaN (as `Loupe_V1_DiamondColumns.featureColumns`).
    public var columns: [[Double]]
    /// The number of rows, or nil when the columns differ in length.
    public var rowCount: Int? {
        let counts = columns.map(\.count)
        return counts.allSatisfy { $0 == counts[0] } ? counts[0] : nil
    }

    public init(request: Loupe_V1_BatchPredictRequest, columns: [[Double]]) {
        self.request = request
        self.columns = columns
    }

    /// The input of a decoded request.
    public init(_ request: Loupe_V1_BatchPredictRequest) {
        var rest = request
        rest.clearRows()
        self.init(request: rest, columns: request.rows.featureColumns())
    }
}

extension Frame {
    /// The payload as a BatchPredict request, its rows as feature columns. Accepts and rejects
    /// exactly what `decode(Loupe_V1_BatchPredictRequest.self)` does, with the same errors.
    public func decodeBatchPredict() throws(ProtocolError) -> BatchPredictInput {
        if !header.flags.contains(.error), !header.flags.contains(.compressed),
            let input = BatchPredictReader.read(payload)
        {
            return input
        }
        return BatchPredictInput(try decode(Loupe_V1_BatchPredictRequest.self))
    }
}

/// The fast path of `decodeBatchPredict`: nil whenever the payload is not in the common
/// encoding (the caller then decodes it with SwiftProtobuf).
enum BatchPredictReader {
    static func read(_ payload: ByteBuffer) -> BatchPredictInput? {
        #if _endian(little)
            return payload.withUnsafeReadableBytes { bytes in read(bytes) }
        #else
            return nil  // the doubles are copied as little-endian bytes
        #endif
    }

    private static func read(_ bytes: UnsafeRawBufferPointer) -> BatchPredictInput? {
        var reader = WireReader(bytes)
        var rows: UnsafeRawBufferPointer?
        // The other fields (model, level, explain, unknown ones), re-encoded as they came.
        var rest = ByteBuffer()
        while !reader.atEnd {
            let fieldStart = reader.offset
            guard let tag = reader.varint(), let field = reader.skip(wireType: Int(tag & 7)) else { return nil }
            if tag == 1 << 3 | 2 {
                // A second rows field would be merged into the first: SwiftProtobuf does that.
                guard rows == nil else { return nil }
                rows = field
            } else {
                rest.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[fieldStart..<reader.offset]))
            }
        }
        var columns = [[Double]](repeating: [], count: Feature.count)
        if let rows {
            guard readColumns(rows, into: &columns) else { return nil }
        }
        let request: Loupe_V1_BatchPredictRequest
        do {
            request = try Loupe_V1_BatchPredictRequest(serializedBytes: FrameBytes(payload: rest))
        } catch {
            return nil
        }
        return BatchPredictInput(request: request, columns: columns)
    }

    /// Grade levels per enum column (field 2 cut, 3 color, 4 clarity).
    private static let levels = [2: Cut.allCases.count, 3: Color.allCases.count, 4: Clarity.allCases.count]

    /// Reads `DiamondColumns` (fields 1…9 = features 0…8), every field packed.
    private static func readColumns(_ bytes: UnsafeRawBufferPointer, into columns: inout [[Double]]) -> Bool {
        var reader = WireReader(bytes)
        while !reader.atEnd {
            guard let tag = reader.varint(), tag & 7 == 2, let body = reader.skip(wireType: 2) else { return false }
            let number = Int(tag >> 3)
            guard (1...Feature.count).contains(number) else { return false }
            if let levels = levels[number] {
                guard appendGrades(body, levels: levels, to: &columns[number - 1]) else { return false }
            } else {
                guard body.count % 8 == 0 else { return false }
                let count = body.count / 8
                let values = [Double](unsafeUninitializedCapacity: count) { out, initialized in
                    if count > 0 {
                        UnsafeMutableRawBufferPointer(out).copyMemory(from: body)
                    }
                    initialized = count
                }
                if columns[number - 1].isEmpty { columns[number - 1] = values } else { columns[number - 1] += values }
            }
        }
        return true
    }

    /// Packed enum varints → codes: wire value v in 1…levels is code v − 1, anything else (0,
    /// unknown, negative) NaN. Values are read as SwiftProtobuf reads enums (int32, truncated).
    private static func appendGrades(_ body: UnsafeRawBufferPointer, levels: Int, to column: inout [Double]) -> Bool {
        if !body.contains(where: { $0 >= 0x80 }) {
            // Every varint one byte (every encoder writes grades so): a byte per row, mapped
            // through a table in one pass (an append per element cost ~1 ms a 100k-row call).
            var codes = [Double](repeating: .nan, count: 128)
            for value in 1..<min(levels + 1, 128) { codes[value] = Double(value - 1) }
            let values = [Double](unsafeUninitializedCapacity: body.count) { out, initialized in
                codes.withUnsafeBufferPointer { codes in
                    for (i, byte) in body.enumerated() { out[i] = codes[Int(byte)] }
                }
                initialized = body.count
            }
            if column.isEmpty { column = values } else { column += values }
            return true
        }
        var reader = WireReader(body)
        column.reserveCapacity(column.count + body.count)
        while !reader.atEnd {
            guard let raw = reader.varint() else { return false }
            let value = Int(Int32(truncatingIfNeeded: raw))
            column.append(value >= 1 && value <= levels ? Double(value - 1) : .nan)
        }
        return true
    }
}

/// Protobuf wire primitives over raw bytes; every read returns nil past the end or on a
/// malformed varint.
private struct WireReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { offset >= bytes.count }

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 64 {
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        return nil
    }

    /// Skips one field's value of `wireType`, returning a length-delimited field's body (an
    /// empty view for the other types); nil for groups, unknown types or a field cut short.
    mutating func skip(wireType: Int) -> UnsafeRawBufferPointer? {
        let size: Int
        switch wireType {
        case 0:
            guard varint() != nil else { return nil }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset])
        case 1: size = 8
        case 2:
            guard let length = varint(), length <= UInt64(bytes.count - offset) else { return nil }
            size = Int(length)
        case 5: size = 4
        default: return nil
        }
        guard size <= bytes.count - offset else { return nil }
        defer { offset += size }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + size])
    }
}
