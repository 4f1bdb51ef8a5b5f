import NIOCore

extension ByteBuffer {
    /// Writes the 16 header bytes; returns the number of bytes written.
    @discardableResult
    public mutating func writeFrameHeader(_ header: FrameHeader) -> Int {
        writeMultipleIntegers(
            header.version, header.flags.rawValue, header.methodID, header.requestID, header.rowCount,
            header.deadlineMilliseconds, endianness: .big)
    }

    /// Writes the header at `index` without moving the writer index (the bytes must exist).
    @discardableResult
    public mutating func setFrameHeader(_ header: FrameHeader, at index: Int) -> Int {
        setInteger(header.version, at: index)
        setInteger(header.flags.rawValue, at: index + 1)
        setInteger(header.methodID, at: index + 2, endianness: .big)
        setInteger(header.requestID, at: index + 4, endianness: .big)
        setInteger(header.rowCount, at: index + 8, endianness: .big)
        setInteger(header.deadlineMilliseconds, at: index + 12, endianness: .big)
        return FrameHeader.size
    }

    /// Reads a header (no validation), or returns `nil` and reads nothing when fewer than 16
    /// bytes are readable.
    public mutating func readFrameHeader() -> FrameHeader? {
        guard
            let (version, flags, method, request, rows, deadline) = readMultipleIntegers(
                endianness: .big, as: (UInt8, UInt8, UInt16, UInt32, UInt32, UInt32).self)
        else { return nil }
        return FrameHeader(
            version: version, flags: FrameFlags(rawValue: flags), methodID: method, requestID: request,
            rowCount: rows, deadlineMilliseconds: deadline)
    }

    /// Writes a whole frame: length, header, payload (the payload's readable bytes are copied).
    /// Returns the number of bytes written.
    @discardableResult
    public mutating func writeFrame(_ frame: Frame) -> Int {
        precondition(
            frame.payload.readableBytes <= Frame.maximumPayloadSize,
            "a frame payload of \(frame.payload.readableBytes) bytes does not fit the 32-bit length field")
        reserveCapacity(minimumWritableBytes: FrameHeader.lengthFieldSize + frame.length)
        var written = writeInteger(UInt32(frame.length), endianness: .big)
        written += writeFrameHeader(frame.header)
        written += writeImmutableBuffer(frame.payload)
        return written
    }
}
