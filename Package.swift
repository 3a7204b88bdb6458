// swift-tools-version: 6.1
import PackageDescription

// The targets follow the layers of the design: the HTTP server and the generation core (the
// dialect-free vocabulary every part shares) stand on the ground; the API dialects above them; the
// application composes everything, and the `sdgate` executable is a thin command line on top.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "sdgate",
    platforms: [.macOS(.v15)],
    // What the library products offer is `public`; everything else that crosses targets is `package`.
    // The products are the server, the core vocabulary, the dialects and the ledger (the benchmarks
    // build on them), plus Jobs and GuardedHTTP because the dialects' public initializers take their
    // types (`GenerationJobs`, `WebhookSender`, `AddressPolicy`): a client could not call them without
    // importing those two. The backends, the application, the command line and the test
    // support are this package's own and say `package`.
    products: [
        .executable(name: "sdgate", targets: ["sdgate"]),
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
        .library(name: "GenerationCore", targets: ["GenerationCore"]),
        .library(name: "GatewayAPI", targets: ["GatewayAPI"]),
        .library(name: "Ledger", targets: ["Ledger"]),
        .library(name: "Jobs", targets: ["Jobs"]),
        .library(name: "GuardedHTTP", targets: ["GuardedHTTP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // Already in the graph through async-http-client; named to tell its connection errors apart.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        // The parts record metrics through swift-metrics; the application exposes them for Prometheus.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Several times Foundation's speed at decoding the megabyte of base64 an image request carries.
        .package(url: "https://github.com/swift-extras/swift-extras-base64", from: "1.2.0"),
        // The multipart/form-data bodies of OpenAI's image edits and variations.
        .package(url: "https://github.com/vapor/multipart-kit", from: "4.7.1"),
        // Tests only: launches clients and sdgate itself (Foundation's Process can crash on Linux
        // while reading /proc/self/fd in a process with many descriptors open).
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        // Already in the graph through swift-subprocess; named for the paths the local workers are spawned with.
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        .target(name: "CSystemShims"),
        .target(name: "CByteChecks"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(
            name: "GenerationCore",
            dependencies: ["CByteChecks", .product(name: "ExtrasBase64", package: "swift-extras-base64")],
            swiftSettings: strict
        ),
        .target(
            name: "Ledger",
            dependencies: [
                "GenerationCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "GatewayAPI",
            dependencies: [
                "HTTPServer", "GenerationCore", "GuardedHTTP", "Jobs",
                .product(name: "Yams", package: "Yams"),
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "MultipartKit", package: "multipart-kit"),
            ],
            swiftSettings: strict
        ),
        .target(name: "HTTPServer", dependencies: ["CSystemShims", "CZlib", "COpenSSL"], swiftSettings: strict),
        // The one way the gateway fetches a URL it did not configure (images, webhooks, upstream outputs).
        .target(
            name: "GuardedHTTP",
            dependencies: ["GenerationCore", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: strict
        ),
        .target(
            name: "LocalInference",
            dependencies: [
                "GenerationCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "UpstreamProxy",
            dependencies: [
                "GenerationCore",
                "GuardedHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // Every way a generation is served (the team's workers, the upstreams) behind one seam, and
        // the per-model routing over them.
        .target(
            name: "Backends",
            dependencies: ["GenerationCore", "LocalInference", "UpstreamProxy", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(
            name: "Jobs",
            dependencies: [
                "GenerationCore", "GuardedHTTP", "HTTPServer", "Ledger",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SDGateApp",
            dependencies: [
                "CSystemShims",
                "HTTPServer",
                "Backends",
                "GatewayAPI",
                "GenerationCore",
                "GuardedHTTP",
                "Jobs",
                "Ledger",
                "LocalInference",
                "UpstreamProxy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The admin page and the default catalog are compiled into the binary: a container needs nothing beside it.
            resources: [
                .embedInCode("Admin/Page/admin.html"), .embedInCode("Admin/Page/admin.js"), .embedInCode("Admin/Page/admin.css"),
                // Config/models.yaml (a link to it), so that the binary serves with no file beside it.
                .embedInCode("Catalog/models.yaml"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "sdgate",
            dependencies: [
                "SDGateApp",
                "CSystemShims",
                "GatewayAPI",
                "GenerationCore",
                "HTTPServer",
                "Ledger",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                "GenerationCore", "HTTPServer",
                .product(name: "Subprocess", package: "swift-subprocess"), .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "HTTPServerTests",
            dependencies: ["HTTPServer", "TestSupport"],
            exclude: ["Clients"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "GatewayAPITests",
            dependencies: ["GatewayAPI", "CByteChecks", "GenerationCore", "GuardedHTTP", "HTTPServer", "TestSupport"],
            exclude: ["Golden"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "LocalInferenceTests",
            dependencies: [
                "LocalInference", "GenerationCore", "TestSupport", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            exclude: ["Support"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BackendsTests",
            dependencies: [
                "Backends", "LocalInference", "UpstreamProxy", "GenerationCore", "TestSupport",
                .product(name: "Logging", package: "swift-log"), .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "JobsTests",
            dependencies: [
                "Jobs", "Ledger", "GenerationCore", "GuardedHTTP", "HTTPServer", "TestSupport", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "LedgerTests",
            dependencies: [
                "Ledger", "GenerationCore", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"), .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "GenerationCoreTests",
            dependencies: ["GenerationCore", "TestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SDGateTests",
            // `sdgate` only for its binary, which the live tests start.
            dependencies: [
                "SDGateApp", "sdgate", "TestSupport", "HTTPServer", "GenerationCore", "GatewayAPI", "GuardedHTTP", "Jobs", "Ledger",
                "LocalInference", "UpstreamProxy",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Clients"],
            swiftSettings: strict
        ),
        // Checks of the repository itself: the manifest against the imports, and the formatting.
        .testTarget(name: "RepositoryTests", dependencies: ["TestSupport"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
