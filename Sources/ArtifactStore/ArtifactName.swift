/// Validation of dataset and model names: `[a-z0-9][a-z0-9._-]{0,63}`.
///
/// Names become directory and object-key components, so the rule keeps them portable (no
/// separators, no leading dot, no upper case that a case-insensitive filesystem would fold).
public enum ArtifactName {
    /// The longest name accepted.
    public static let maxLength = 64

    /// True when `name` matches `[a-z0-9][a-z0-9._-]{0,63}`.
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= maxLength, isLowerAlnum(first) else { return false }
        return bytes.dropFirst().allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    /// Throws ``StoreError/Code/invalidName`` unless `name` is valid.
    public static func validate(_ name: String, kind: String) throws {
        guard isValid(name) else {
            throw StoreError(
                .invalidName,
                "\(kind) name \"\(name)\" is not valid: expected 1–64 characters, lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        }
    }

    private static func isLowerAlnum(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }
}
