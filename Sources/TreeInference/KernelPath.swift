import CLoupeKernels

/// A kernel family that scores rows; every path gives bit-identical raw scores.
public enum KernelPath: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Plain C, several rows at a time; runs everywhere and is the reference for the others.
    case scalar
    /// x86-64 AVX2: eight rows, or four trees, per vector, with hardware gathers.
    case avx2
    /// x86-64 AVX-512 (F, CD, BW, VL, DQ): sixteen rows, or eight trees, per vector.
    case avx512

    /// The paths this CPU and OS can run, slowest first (always at least `.scalar`).
    public static func available() -> [KernelPath] {
        let mask = loupe_infer_available_paths()
        return allCases.filter { mask & (1 << $0.kernelIndex) != 0 }
    }

    /// The fastest path this CPU can run.
    public static var best: KernelPath { available().last ?? .scalar }

    /// How many scoring calls have run on this path in this process (for tests and diagnostics:
    /// it shows which kernel actually ran).
    public var callCount: UInt64 { loupe_infer_path_calls(kernelIndex) }

    public var description: String { rawValue }

    var kernelIndex: Int32 {
        switch self {
        case .scalar: Int32(LOUPE_PATH_SCALAR)
        case .avx2: Int32(LOUPE_PATH_AVX2)
        case .avx512: Int32(LOUPE_PATH_AVX512)
        }
    }
}
