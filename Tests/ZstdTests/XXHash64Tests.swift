import Testing
import Zstd

@Suite struct XXHash64Tests {
    @Test func matchesTheReference() {
        func hash(_ text: String) -> UInt64 { Array(text.utf8).withUnsafeBytes { XXHash64.hash($0) } }
        #expect(hash("") == 0xEF46_DB37_51D8_E999)
        #expect(hash("abc") == 0x44BC_2CF5_AD77_0999)
    }
}
