// swift-tools-version:6.1
import PackageDescription

/// Optimisation flags shared by every Swift target: the kernels are written over
/// unsafe pointers and rely on the optimiser for vectorisation.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "swift-clip-interrogator",
    // Only Linux is built and tested. macOS 15 is the least the APIs used need
    // (Synchronization's Mutex and Atomic); no Apple platform is built or checked.
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "NeuralCore", targets: ["NeuralCore"]),
        .library(name: "NeuralModels", targets: ["NeuralModels"]),
        .library(name: "HuggingFaceHub", targets: ["HuggingFaceHub"]),
        .library(name: "ClipInterrogator", targets: ["ClipInterrogator"]),
        .executable(name: "interrogate", targets: ["interrogate"]),
        .executable(name: "interrogate-bench", targets: ["interrogate-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // `swift package generate-documentation` (DocC); used by no target.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // System libraries. On Apple platforms BLAS comes from Accelerate instead.
        .systemLibrary(
            name: "CBLAS",
            path: "Sources/CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CPNG",
            path: "Sources/CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]
        ),
        .systemLibrary(
            name: "CJPEG",
            path: "Sources/CJPEG",
            pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg-dev"]), .brew(["jpeg-turbo"])]
        ),

        // setjmp/longjmp boundary around libpng and libjpeg (Swift cannot survive a longjmp).
        .target(
            name: "CImageCodecs",
            dependencies: ["CPNG", "CJPEG"],
            path: "Sources/CImageCodecs"
        ),

        .target(
            name: "NeuralCore",
            dependencies: [.target(name: "CBLAS", condition: .when(platforms: [.linux]))],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "NeuralModels",
            dependencies: ["NeuralCore", "CImageCodecs"],
            swiftSettings: swiftSettings
        ),
        // The Hugging Face Hub client: Foundation only, usable by any package.
        .target(
            name: "HuggingFaceHub",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ClipInterrogator",
            dependencies: ["NeuralCore", "NeuralModels", "HuggingFaceHub"],
            resources: [.copy("Resources/data")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "interrogate",
            dependencies: [
                "ClipInterrogator", "HuggingFaceHub", "NeuralModels", "NeuralCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            exclude: ["install.sh"], // the install step (README, "Install"), not a source
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "interrogate-bench",
            dependencies: ["NeuralCore", "NeuralModels", "ClipInterrogator"],
            path: "Benchmarks/interrogate-bench",
            swiftSettings: swiftSettings
        ),

        .target(
            name: "TestSupport",
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NeuralCoreTests",
            dependencies: ["NeuralCore", "TestSupport"],
            path: "Tests/NeuralCoreTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ClipInterrogatorTests",
            dependencies: ["ClipInterrogator", "HuggingFaceHub", "NeuralModels", "NeuralCore", "TestSupport"],
            path: "Tests/ClipInterrogatorTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HuggingFaceHubTests",
            dependencies: ["HuggingFaceHub"],
            path: "Tests/HuggingFaceHubTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InterrogateCLITests",
            dependencies: ["interrogate", "TestSupport"],
            path: "Tests/InterrogateCLITests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "NeuralModelsTests",
            dependencies: ["NeuralModels", "TestSupport"],
            path: "Tests/NeuralModelsTests",
            swiftSettings: swiftSettings
        ),
    ]
)

// The libFuzzer harness (Tests/Fuzz/Sources), only when CLIP_INTERROGATOR_FUZZ is
// set, as Tests/Fuzz/fuzz.sh builds it: with -sanitize=fuzzer, which supplies the
// program's main, in its own scratch path (.build-fuzz).
if Context.environment["CLIP_INTERROGATOR_FUZZ"] != nil {
    package.products.append(.executable(name: "interrogate-fuzz", targets: ["interrogate-fuzz"]))
    package.targets.append(.executableTarget(
        name: "interrogate-fuzz",
        dependencies: ["ClipInterrogator", "NeuralModels", "NeuralCore"],
        path: "Tests/Fuzz/Sources",
        swiftSettings: swiftSettings
    ))
}
