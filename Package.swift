// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "Loupe",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "loupe", targets: ["LoupeCLI"]),
        .library(name: "DiamondSchema", targets: ["DiamondSchema"]),
        .library(name: "DataCleaning", targets: ["DataCleaning"]),
        .library(name: "TreeModel", targets: ["TreeModel"]),
        .library(name: "TreeTraining", targets: ["TreeTraining"]),
        .library(name: "ArtifactStore", targets: ["ArtifactStore"]),
        .library(name: "LoupeProtocol", targets: ["LoupeProtocol"]),
        .library(name: "TreeInference", targets: ["TreeInference"]),
        .library(name: "TreeExplain", targets: ["TreeExplain"]),
        .library(name: "ModelImport", targets: ["ModelImport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // System libzstd (Debian: libzstd-dev).
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        // The bundled diamonds data, zstd-compressed and linked into the binary with `.incbin`.
        .target(
            name: "CLoupeData",
            exclude: ["bundled"],
            cSettings: [.headerSearchPath("bundled")]
        ),
        // Hot loops in C: histogram construction, and the inference kernels (scalar, AVX2, AVX-512
        // through per-function target attributes and run-time CPU detection: no global -m flags).
        .target(
            name: "CLoupeKernels",
            cSettings: [.unsafeFlags(["-O3"])]
        ),
        .target(name: "Zstd", dependencies: ["CZstd"], swiftSettings: strict),
        .target(name: "BundledData", dependencies: ["CLoupeData", "Zstd"], swiftSettings: strict),
        // The few helpers every layer uses (SplitMix64, Duration.seconds, the coded-error shape):
        // no dependencies, so any module can take it without bending an arrow.
        .target(name: "LoupeUtilities", swiftSettings: strict),
        .target(name: "DiamondSchema", swiftSettings: strict),
        .target(name: "DataCleaning", dependencies: ["DiamondSchema"], swiftSettings: strict),
        .target(name: "TreeModel", dependencies: ["DiamondSchema", "LoupeUtilities"], swiftSettings: strict),
        .target(
            name: "TreeTraining",
            dependencies: ["TreeModel", "DataCleaning", "DiamondSchema", "CLoupeKernels", "LoupeUtilities"],
            swiftSettings: strict
        ),
        // Threads of Loupe's own that help score a batch (not the shared Dispatch/Swift concurrency pool).
        .target(name: "HelperThreads", dependencies: ["CLoupeKernels"], swiftSettings: strict),
        // The flat inference form of an ensemble and batched scoring over the C kernels.
        .target(
            name: "TreeInference", dependencies: ["TreeModel", "CLoupeKernels", "HelperThreads", "LoupeUtilities"],
            swiftSettings: strict),
        // TreeSHAP explanations: per-leaf subset tables built at load (Algorithm 2 as the fallback).
        .target(name: "TreeExplain", dependencies: ["TreeModel", "CLoupeKernels", "HelperThreads"], swiftSettings: strict),
        // LightGBM text and XGBoost JSON models read into the IR, with their prediction rules.
        .target(name: "ModelImport", dependencies: ["TreeModel", "DiamondSchema", "LoupeUtilities"], swiftSettings: strict),
        .target(
            name: "ModelRuntime",
            dependencies: ["DiamondSchema", "DataCleaning", "TreeExplain", "TreeInference", "TreeModel"],
            swiftSettings: strict
        ),
        // Content-addressed, versioned artifact store: opaque bytes and small JSON only.
        .target(
            name: "ArtifactStore",
            dependencies: ["LoupeUtilities", "Zstd", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // The artifact store on S3-compatible object storage (AWS S3, MinIO, Ceph RGW, R2): a
        // hand-written SigV4 layer over async-http-client. Its own module so that ArtifactStore
        // (and everything that links it: tests, benchmarks, the stress child) does not pull in
        // an HTTP client; the CLI links it to open `--store s3://…`.
        .target(
            name: "S3Store",
            dependencies: [
                "ArtifactStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Loupe's datasets and models in the store: the glue between ArtifactStore and the domain.
        .target(
            name: "Catalog",
            dependencies: ["ArtifactStore", "BundledData", "DataCleaning", "HyperTuning", "TreeModel", "TreeTraining"],
            swiftSettings: strict
        ),
        // The hyperparameter tuner: TPE proposals, successive halving on rounds, budgets.
        .target(
            name: "HyperTuning",
            dependencies: ["DataCleaning", "LoupeUtilities", "TreeModel", "TreeTraining"],
            swiftSettings: strict
        ),
        // Live accuracy: realised prices joined to logged calls, per-version figures, and the
        // rollout guard that rolls back a canary or new production that does worse than production.
        .target(
            name: "LiveAccuracy",
            dependencies: [
                "ArtifactStore", "Catalog", "DataCleaning", "DiamondSchema", "ModelServer", "RequestLog", "TreeModel",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // The retraining pipeline (challenger vs champion) and the job runner behind Retrain.
        .target(
            name: "Retraining",
            dependencies: [
                "ArtifactStore", "Catalog", "DataCleaning", "HyperTuning", "LoupeUtilities", "TreeModel", "TreeTraining",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The wire protocol: generated messages from Protos/, the frame codec, status codes.
        .target(
            name: "LoupeProtocol",
            dependencies: [
                "DiamondSchema",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The frame decoder's fuzz target: `scripts/fuzz-frames` builds it with libFuzzer
        // (-DFUZZING); a normal build makes a tool that replays the files it is given.
        .executableTarget(
            name: "FrameDecoderFuzz",
            dependencies: ["FrameFuzzHarness"],
            path: "Fuzz/FrameDecoderFuzz",
            swiftSettings: strict
        ),
        // What the model server's and the gateway's connections share: the connection state
        // machine, closing after pending writes, the drain of open connections, Welcome/Limits,
        // the HTTP status endpoint (metrics, healthz, report).
        .target(
            name: "LoupeConnection",
            dependencies: [
                "LoupeProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The fuzz target's checks, shared with the test that replays the seed corpus.
        .target(
            name: "FrameFuzzHarness",
            dependencies: [
                "LoupeProtocol",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Fuzz/FrameFuzzHarness",
            swiftSettings: strict
        ),
        // Training report pages: self-contained HTML with SVG charts.
        .target(
            name: "Reports",
            dependencies: ["ArtifactStore", "Catalog", "DataCleaning", "HyperTuning", "Retraining", "TreeTraining"],
            swiftSettings: strict
        ),
        // The scheduler: retrain on an interval, on new data in the inbox, on drift.
        .target(
            name: "Scheduling",
            dependencies: [
                "ArtifactStore", "Catalog", "DataCleaning", "DiamondSchema", "LoupeMetrics", "LoupeUtilities", "RequestLog",
                "Retraining",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // The request log: guestbook rows (SQLite / PostgreSQL) and the payload archive (zstd
        // segments sealed into the artifact store), written off the serving path.
        .target(
            name: "RequestLog",
            dependencies: [
                "ArtifactStore", "DiamondSchema", "LoupeProtocol", "LoupeUtilities", "PostgresSupport", "Zstd",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // What every Loupe process exports: process_* (from /proc) and loupe_build_info.
        .target(
            name: "LoupeMetrics",
            dependencies: [.product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: strict
        ),
        // The model server: connections, handshake, calls, hot swap, metrics, graceful shutdown.
        .target(
            name: "ModelServer",
            dependencies: [
                "ArtifactStore", "Catalog", "DiamondSchema", "LoupeConnection", "LoupeMetrics", "LoupeProtocol",
                "ModelRuntime", "RequestLog", "TreeExplain", "TreeModel", "TreeTraining",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // A call with a timeout that holds even when the call ignores cancellation.
        .target(
            name: "AsyncTimeout",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // What the token store and the guestbook share in PostgreSQL: the URLs they accept, and
        // a pool with timed calls and transactions.
        .target(
            name: "PostgresSupport",
            dependencies: [
                "AsyncTimeout",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
        // The Retrain and GetJob calls over the retraining job runner (what `ModelServer(jobs:)` takes).
        .target(
            name: "RetrainService",
            dependencies: [
                "ArtifactStore", "Catalog", "DiamondSchema", "HyperTuning", "LoupeProtocol", "ModelServer", "Retraining",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Partner tokens: format, hashing, and their store (SQLite by default, PostgreSQL for
        // several gateways), with per-day quota counters and the audit table.
        .target(
            name: "TokenStore",
            dependencies: [
                "PostgresSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The gateway: terminates the handshake, checks tokens, scopes and rate limits, and
        // forwards frames (payloads undecoded) to healthy model servers. TLS optional.
        .target(
            name: "Gateway",
            dependencies: [
                "AsyncTimeout", "LoupeConnection", "LoupeMetrics", "LoupeProtocol", "TokenStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // What the test targets share (no product): a counting stand-in model server, the raw
        // socket, log capture, synthetic diamond CSVs, and the directory tests write files in.
        .target(
            name: "LoupeTestKit",
            dependencies: [
                "ArtifactStore", "LoupeProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The Swift client: async calls over one pipelined connection.
        .target(
            name: "LoupeClient",
            dependencies: [
                "DiamondSchema", "LoupeProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "LoupeCLI",
            dependencies: [
                "ArtifactStore", "BundledData", "Catalog", "DataCleaning", "DiamondSchema", "Gateway", "HyperTuning",
                "LiveAccuracy", "LoupeClient", "LoupeProtocol", "LoupeUtilities", "ModelImport", "ModelServer", "ModelRuntime",
                "Reports", "RequestLog", "RetrainService", "Retraining", "S3Store", "Scheduling", "TokenStore", "TreeExplain",
                "TreeInference", "TreeModel", "TreeTraining",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        // Benchmarks and load tools: executables without products, outside the `loupe` binary.
        // `swift build` builds them; `swift run -c release loupe-bench-server …` runs one.
        // Inference throughput on a 1000-tree model (driven by bench/inference.py).
        .executableTarget(
            name: "loupe-bench-inference",
            dependencies: [
                "BundledData", "DataCleaning", "LoupeUtilities", "ModelImport", "TreeExplain", "TreeInference", "TreeModel",
                "TreeTraining",
            ],
            path: "Benchmarks/InferenceBench",
            swiftSettings: strict
        ),
        // A child process for the store's crash and concurrency tests (killed at random moments).
        .executableTarget(
            name: "loupe-store-stress",
            dependencies: ["ArtifactStore", "BundledData", "LoupeUtilities"],
            path: "Benchmarks/StoreStress",
            swiftSettings: strict
        ),
        // Load on a running server or gateway (was `loupe bench-server`; bench/*.py drive it).
        .executableTarget(
            name: "loupe-bench-server",
            dependencies: [
                "BundledData", "Catalog", "DataCleaning", "DiamondSchema", "LoupeClient", "LoupeProtocol", "LoupeUtilities",
                "ModelRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/ServerLoad",
            swiftSettings: strict
        ),

        .testTarget(name: "ZstdTests", dependencies: ["Zstd", "BundledData"]),
        .testTarget(name: "DiamondSchemaTests", dependencies: ["DiamondSchema"]),
        .testTarget(name: "DataCleaningTests", dependencies: ["DataCleaning", "BundledData", "LoupeUtilities"]),
        .testTarget(name: "TreeModelTests", dependencies: ["TreeModel", "LoupeUtilities"], exclude: ["Fixtures"]),
        .testTarget(name: "TreeTrainingTests", dependencies: ["TreeTraining", "BundledData", "DataCleaning"]),
        .testTarget(name: "HelperThreadsTests", dependencies: ["HelperThreads"]),
        .testTarget(name: "TreeInferenceTests", dependencies: ["TreeInference", "TreeTraining", "BundledData", "LoupeUtilities"]),
        .testTarget(name: "TreeExplainTests", dependencies: ["TreeExplain", "TreeModel", "TreeTraining", "BundledData", "DataCleaning"]),
        .testTarget(
            name: "ModelImportTests", dependencies: ["ModelImport", "TreeExplain", "TreeInference", "TreeModel"],
            exclude: ["Fixtures"]),
        .testTarget(name: "ModelRuntimeTests", dependencies: ["ModelRuntime", "TreeTraining"]),
        .testTarget(
            name: "ArtifactStoreTests",
            dependencies: [
                "ArtifactStore", "loupe-store-stress", "BundledData", "LoupeUtilities", "S3Store",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog"]),
        .testTarget(name: "RetrainingTests", dependencies: ["LoupeTestKit", "Retraining"]),
        .testTarget(name: "HyperTuningTests", dependencies: ["HyperTuning"]),
        .testTarget(
            name: "ReportsTests", dependencies: ["Reports", "Catalog", "LoupeTestKit", "Retraining", "TreeTraining", "HyperTuning"]),
        .testTarget(name: "SchedulingTests", dependencies: ["Scheduling", "Catalog", "LoupeTestKit", "Retraining", "TreeTraining"]),
        .testTarget(
            name: "LoupeCLITests",
            dependencies: [
                "Catalog", "LoupeCLI", "LoupeProtocol", "LoupeTestKit", "RequestLog", "Retraining", "S3Store", "TreeTraining", "Zstd",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LiveAccuracyTests",
            dependencies: [
                "ArtifactStore", "Catalog", "DiamondSchema", "LiveAccuracy", "LoupeClient", "LoupeProtocol", "LoupeTestKit",
                "ModelRuntime", "ModelServer", "RequestLog", "TreeTraining",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ModelServerTests",
            dependencies: [
                "Catalog", "DataCleaning", "DiamondSchema", "LoupeClient", "LoupeProtocol", "LoupeTestKit", "ModelServer",
                "Reports", "RetrainService", "Retraining", "TreeTraining", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "RequestLogTests",
            dependencies: [
                "ArtifactStore", "Catalog", "DiamondSchema", "LoupeClient", "LoupeProtocol", "LoupeTestKit", "ModelServer",
                "RequestLog", "RetrainService", "Scheduling", "TreeTraining", "Zstd",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TokenStoreTests",
            dependencies: ["LoupeTestKit", "TokenStore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Catalog", "DiamondSchema", "Gateway", "LoupeClient", "LoupeProtocol", "LoupeTestKit", "LoupeUtilities",
                "ModelServer", "RetrainService", "TokenStore", "TreeTraining",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "LoupeConnectionTests",
            dependencies: [
                "LoupeConnection", "LoupeProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LoupeProtocolTests",
            dependencies: [
                "FrameFuzzHarness", "LoupeProtocol", "LoupeUtilities",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["Corpus"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
