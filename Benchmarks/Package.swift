// swift-tools-version: 6.1
import PackageDescription

// Three servers answering the same three routes, so `./run` can compare sdgate's hand-written
// HTTP server against two reference points: Hummingbird 2 (a full framework on SwiftNIO) and a bare
// SwiftNIO NIOHTTP1 pipeline (the floor of what NIO itself costs). `fake-upstream` is the upstream
// that `proxy-latency` puts behind sdgate.
let package = Package(
    name: "sdgate-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "sdgate", path: ".."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        // Only to set Hummingbird's log level; already in the graph through the root package.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(name: "BenchmarkSupport"),
        .executableTarget(
            name: "sdgate-server",
            dependencies: ["BenchmarkSupport", .product(name: "HTTPServer", package: "sdgate")]
        ),
        .executableTarget(
            name: "fake-upstream",
            dependencies: ["BenchmarkSupport", .product(name: "HTTPServer", package: "sdgate")]
        ),
        .executableTarget(
            name: "validation-bench",
            dependencies: [
                .product(name: "GatewayAPI", package: "sdgate"),
                .product(name: "GenerationCore", package: "sdgate"),
                .product(name: "HTTPServer", package: "sdgate"),
            ]
        ),
        .executableTarget(
            name: "ledger-bench",
            dependencies: [
                .product(name: "Ledger", package: "sdgate"),
                .product(name: "GenerationCore", package: "sdgate"),
                .product(name: "GatewayAPI", package: "sdgate"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "hummingbird-server",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "nio-server",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
