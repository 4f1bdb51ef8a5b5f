import NIOCore
import SwiftProtobuf

// A hand-written encoder for the one large request, BatchPredict. SwiftProtobuf encodes
// repeated enums through unspecialised generic code (an iterator and a witness lookup per
// element, 9-byte enum copies), which made the Swift client spend more time encoding a
// 100k-row call than the server spends scoring it. The bytes are exactly SwiftProtobuf's
// (fields in number order, packed, empty columns omitted); a test holds them equal.

extension Frame {
    /// A BatchPredict request frame, its columns encoded without SwiftProtobuf's generic path.
    public init(header: FrameHeader, batchPredict request: Loupe_V1_BatchPredictRequest) throws(ProtocolError) {
        var rest = request
        rest.clearRows()
        let restBytes: [UInt8]
        do {
            restBytes = try rest.serializedBytes()
        } catch {
            throw ProtocolError(code: .internalError, message: "could not serialize the BatchPredictRequest: \(error)")
        }
        let columns = PackedColumns(request.rows)
        let columnsSize = columns.size
        let size = (request.hasRows ? 1 + varintSize(UInt64(columnsSize)) + columnsSize : 0) + restBytes.count
        guard size <= Frame.maximumPayloadSize else {
            throw ProtocolError(
                code: .resourceExhausted,
                message: "the BatchPredictRequest for frame \(header) is \(size) bytes, "
                    + "more than a frame can carry (\(Frame.maximumPayloadSize))")
        }
        var payload = ByteBufferAllocator().buffer(capacity: size)
        if request.hasRows {
            payload.writeInteger(UInt8(1 << 3 | 2))  // field 1, length-delimited
            payload.writeVarint(UInt64(columnsSize))
            columns.write(to: &payload)
        }
        payload.writeBytes(restBytes)
        self.init(header: header, payload: payload)
    }
}

/// The columns with the grades as their wire numbers, computed once for sizing and writing.
private struct PackedColumns {
    let columns: Loupe_V1_DiamondColumns
    let cut: [Int], color: [Int], clarity: [Int]

    init(_ columns: Loupe_V1_DiamondColumns) {
        self.columns = columns
        cut = columns.cut.map(\.rawValue)
        color = columns.color.map(\.rawValue)
        clarity = columns.clarity.map(\.rawValue)
    }

    /// Bytes of the encoded message.
    var size: Int {
        func field(_ bytes: Int) -> Int { bytes == 0 ? 0 : 1 + varintSize(UInt64(bytes)) + bytes }
        return field(columns.carat.count * 8) + field(enumsSize(cut)) + field(enumsSize(color))
            + field(enumsSize(clarity)) + field(columns.depth.count * 8) + field(columns.table.count * 8)
            + field(columns.x.count * 8) + field(columns.y.count * 8) + field(columns.z.count * 8)
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writePackedDoubles(columns.carat, field: 1)
        buffer.writePackedEnums(cut, field: 2)
        buffer.writePackedEnums(color, field: 3)
        buffer.writePackedEnums(clarity, field: 4)
        buffer.writePackedDoubles(columns.depth, field: 5)
        buffer.writePackedDoubles(columns.table, field: 6)
        buffer.writePackedDoubles(columns.x, field: 7)
        buffer.writePackedDoubles(columns.y, field: 8)
        buffer.writePackedDoubles(columns.z, field: 9)
    }
}

private func enumsSize(_ values: [Int]) -> Int {
    values.reduce(0) { $0 + varintSize(UInt64(bitPattern: Int64($1))) }
}

private func varintSize(_ value: UInt64) -> Int {
    value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
}

extension ByteBuffer {
    fileprivate mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        writeInteger(UInt8(v))
    }

    fileprivate mutating func writePackedDoubles(_ values: [Double], field: Int) {
        guard !values.isEmpty else { return }
        writeInteger(UInt8(field << 3 | 2))
        writeVarint(UInt64(values.count * 8))
        #if _endian(little)
            values.withUnsafeBytes { _ = writeBytes($0) }
        #else
            for v in values { writeInteger(v.bitPattern, endianness: .little) }
        #endif
    }

    fileprivate mutating func writePackedEnums(_ values: [Int], field: Int) {
        guard !values.isEmpty else { return }
        let size = enumsSize(values)
        writeInteger(UInt8(field << 3 | 2))
        writeVarint(UInt64(size))
        if size == values.count {
            // Every value below 128: one byte each, written in one go.
            writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                for (i, v) in values.enumerated() { out[i] = UInt8(truncatingIfNeeded: v) }
                return size
            }
        } else {
            for v in values { writeVarint(UInt64(bitPattern: Int64(v))) }
        }
    }
}
