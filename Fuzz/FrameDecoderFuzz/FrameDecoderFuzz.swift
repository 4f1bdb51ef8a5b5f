// The frame decoder's fuzz target. The logic lives in Fuzz/FrameFuzzHarness (`FrameFuzzing.run`),
// so the test suite replays the seed corpus through exactly the same code.
//
//   scripts/fuzz-frames 120                 build with -sanitize=fuzzer and fuzz for 120 s
//   swift run FrameDecoderFuzz FILE...      replay files without libFuzzer

import FrameFuzzHarness

#if FUZZING

/// libFuzzer's entry point: one input, as a peer's byte stream.
@_cdecl("LLVMFuzzerTestOneInput")
public func frameDecoderFuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = FrameFuzzing.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#else

import Foundation

/// Replays files through the fuzz logic and prints what each did.
@main
enum ReplayFrames {
    static func main() {
        var unreadable = 0
        for path in CommandLine.arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("\(path): cannot read")
                unreadable += 1
                continue
            }
            let outcome = data.withUnsafeBytes { FrameFuzzing.run($0) }
            let error = outcome.error.map { "\($0)" } ?? "none"
            print(
                "\(path): \(outcome.headers.count) frames, \(outcome.decodedPayloads) payloads decoded, "
                    + "error \(error)\(outcome.truncated ? ", truncated" : "")")
        }
        exit(unreadable == 0 ? 0 : 1)
    }
}

#endif
