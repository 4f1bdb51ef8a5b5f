import Foundation

/// JSON for manifests and alias records: pretty, sorted keys, ISO-8601 UTC dates.
enum ManifestCoding {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        do {
            return Array(try encoder.encode(value)) + [UInt8(ascii: "\n")]
        } catch {
            throw StoreError(.invalidArgument, "cannot encode \(T.self) as JSON: \(error)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8], key: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(type, from: Data(bytes))
        } catch {
            throw StoreError(.corruptManifest, "\(key) is not a valid \(T.self): \(error)")
        }
    }

    /// Now, in whole seconds (what ISO-8601 without fractions keeps), so a manifest read back
    /// equals the one returned by the write.
    static func now() -> Date {
        Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
    }

    /// Checks that `bytes` parse as JSON (reports are opaque but must at least be JSON).
    static func validateJSON(_ bytes: [UInt8], what: String) throws {
        do {
            _ = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            throw StoreError(.invalidArgument, "\(what) is not valid JSON: \(error)")
        }
    }
}
