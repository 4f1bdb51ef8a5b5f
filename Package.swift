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
        .library(name: "TreeInference", targets: ["TreeInference"]),
        .executable(name: "loupe-store-stress", targets: ["StoreStress"]),
        .executable(name: "loupe-bench-inference", targets: ["InferenceBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
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
        .target(name: "DiamondSchema", swiftSettings: strict),
        .target(name: "DataCleaning", dependencies: ["DiamondSchema"], swiftSettings: strict),
        .target(name: "TreeModel", dependencies: ["DiamondSchema"], swiftSettings: strict),
        .target(
            name: "TreeTraining",
            dependencies: ["TreeModel", "DataCleaning", "DiamondSchema", "CLoupeKernels"],
            swiftSettings: strict
        ),
        // The flat inference form of an ensemble and batched scoring over the C kernels.
        .target(name: "TreeInference", dependencies: ["TreeModel", "CLoupeKernels"], swiftSettings: strict),
        // Inference throughput on a 1000-tree model (driven by bench/inference.py).
        .executableTarget(
            name: "InferenceBench",
            dependencies: ["TreeInference", "TreeModel", "TreeTraining", "DataCleaning", "BundledData"],
            swiftSettings: strict
        ),
        .target(
            name: "ModelServing",
            dependencies: ["DiamondSchema", "DataCleaning", "TreeModel"],
            swiftSettings: strict
        ),
        // Content-addressed, versioned artifact store: opaque bytes and small JSON only.
        .target(
            name: "ArtifactStore",
            dependencies: ["Zstd", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // A child process for the store's crash and concurrency tests (killed at random moments).
        .executableTarget(name: "StoreStress", dependencies: ["ArtifactStore", "BundledData"], swiftSettings: strict),
        // Loupe's datasets and models in the store: the glue between ArtifactStore and the domain.
        .target(
            name: "Catalog",
            dependencies: ["ArtifactStore", "BundledData", "DataCleaning", "TreeModel", "TreeTraining"],
            swiftSettings: strict
        ),
        // The retraining pipeline (challenger vs champion) and the job runner behind Retrain.
        .target(
            name: "Retraining",
            dependencies: ["ArtifactStore", "Catalog", "DataCleaning", "TreeModel", "TreeTraining"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "LoupeCLI",
            dependencies: [
                "ArtifactStore", "BundledData", "Catalog", "DataCleaning", "DiamondSchema", "Retraining", "TreeModel",
                "TreeTraining",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "ZstdTests", dependencies: ["Zstd", "BundledData"]),
        .testTarget(name: "DiamondSchemaTests", dependencies: ["DiamondSchema"]),
        .testTarget(name: "DataCleaningTests", dependencies: ["DataCleaning", "BundledData"]),
        .testTarget(name: "TreeModelTests", dependencies: ["TreeModel"]),
        .testTarget(name: "TreeTrainingTests", dependencies: ["TreeTraining", "BundledData", "DataCleaning"]),
        .testTarget(name: "TreeInferenceTests", dependencies: ["TreeInference", "TreeTraining", "BundledData"]),
        .testTarget(name: "ModelServingTests", dependencies: ["ModelServing", "TreeTraining"]),
        .testTarget(name: "ArtifactStoreTests", dependencies: ["ArtifactStore", "StoreStress", "BundledData"]),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog"]),
        .testTarget(name: "RetrainingTests", dependencies: ["Retraining"]),
        .testTarget(name: "LoupeCLITests", dependencies: ["LoupeCLI"]),
    ],
    swiftLanguageModes: [.v6]
)
