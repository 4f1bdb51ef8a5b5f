import ArgumentParser
import ArtifactStore

struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Check, clean up and measure the artifact store.",
        subcommands: [Verify.self, GC.self, DU.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-hash every blob and check every manifest's references; exit 1 if anything is wrong.")

        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            let catalog = try storeOptions.readOnlyCatalog()
            let report = try oneLine("store \(storeOptions.location)") { try catalog.store.verify() }
            print("checked \(report.blobsChecked) blobs and \(report.documentsChecked) manifests: "
                + (report.ok ? "ok" : "PROBLEMS FOUND"))
            for blob in report.corruptBlobs { print("  corrupt blob \(blob.digest) (\(blob.location)): \(blob.message)") }
            for blob in report.missingBlobs {
                print("  missing blob \(blob.digest), referenced by \(blob.referencedBy.joined(separator: ", "))")
            }
            for doc in report.brokenDocuments { print("  broken \(doc.key): \(doc.message)") }
            if !report.orphanTempFiles.isEmpty {
                print("  \(report.orphanTempFiles.count) partial files of a dead writer (removed on the next open)")
            }
            if !report.ok { throw ExitCode(1) }
        }
    }

    struct GC: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Remove blobs nothing references and older than the grace period (dry run unless --apply).")

        @Option(parsing: .unconditional, help: "Keep unreferenced blobs younger than this many hours.")
        var graceHours: Double = 24

        @Flag(help: "Really delete (the default only lists what would go).")
        var apply = false

        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            guard graceHours >= 0 else { throw CLIError("--grace-hours must be >= 0") }
            let catalog = try storeOptions.catalog()
            let report = try oneLine("store \(storeOptions.location)") {
                try catalog.store.gc(gracePeriod: .milliseconds(Int64(graceHours * 3_600_000)), dryRun: !apply)
            }
            let verb = apply ? "removed" : "would remove (dry run; --apply to delete)"
            print("\(verb): \(report.collected.count) blobs, \(report.bytesCollected) bytes")
            for blob in report.collected { print("  \(blob.digest)  \(blob.storedBytes) bytes") }
            print("kept: \(report.referenced) referenced, \(report.tooYoung.count) unreferenced but younger than "
                + "\(format(graceHours, 1))h")
        }
    }

    struct DU: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "du", abstract: "Sizes per kind of artifact, raw and stored, and compression ratios.")

        @OptionGroup var storeOptions: StoreOptions

        func run() throws {
            let catalog = try storeOptions.readOnlyCatalog()
            let report = try oneLine("store \(storeOptions.location)") { try catalog.store.du() }
            print(pad("kind", 10) + pad("blobs", 7) + pad("raw bytes", 14) + pad("stored bytes", 14) + "ratio")
            for (name, blobs) in [("datasets", report.datasets), ("models", report.models), ("other", report.other),
                                  ("total", report.blobs)] {
                print(pad(name, 10) + pad("\(blobs.count)", 7) + pad("\(blobs.rawBytes)", 14)
                    + pad("\(blobs.storedBytes)", 14) + format(blobs.compressionRatio, 2) + "×")
            }
            print("manifests: \(report.documentCount) files, \(report.documentBytes) bytes; "
                + "total on disk \(report.totalStoredBytes) bytes")
        }
    }
}
