/// A zstd frame that holds its content as one raw (uncompressed) block, with the frame's
/// content checksum (RFC 8878 §3.1.1): a memcpy and an XXH64 instead of a compressor's work,
/// for content zstd could not shrink on its own. Any zstd reader (and `zstd -dc`) reads it as it
/// reads a compressed frame.
public enum ZstdRawFrame {
    /// The most content one raw frame holds here: the header's 2-byte content size field
    /// (size - 256), well under the format's 128 KiB block limit.
    public static let maxContent = 0xFFFF + 256

    /// Appends the frame holding `content` (at most `maxContent` bytes) to `out`.
    public static func append(_ content: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        precondition(content.count <= maxContent)
        let n = content.count
        appendLittleEndian(0xFD2F_B528, bytes: 4, to: &out)  // the magic number
        // Frame header descriptor: single segment (no window descriptor), content checksum,
        // and the content size in 1 byte (flag 0) or 2 bytes holding size - 256 (flag 1).
        let sizeFlag: UInt8 = n < 256 ? 0 : 1
        out.append(sizeFlag << 6 | 0x20 | 0x04)
        if n < 256 {
            out.append(UInt8(n))
        } else {
            appendLittleEndian(UInt64(n - 256), bytes: 2, to: &out)
        }
        // Block header: last block, type 0 (raw), size.
        appendLittleEndian(UInt64(n) << 3 | 1, bytes: 3, to: &out)
        out.append(contentsOf: content)
        appendLittleEndian(XXHash64.hash(content) & 0xFFFF_FFFF, bytes: 4, to: &out)
    }

    private static func appendLittleEndian(_ value: UInt64, bytes: Int, to out: inout [UInt8]) {
        for i in 0..<bytes { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }
}
