// swift-tools-version: 6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "StateCast",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Envelope", targets: ["Envelope"]),
        .library(name: "Debounce", targets: ["Debounce"]),
        .library(name: "HostBroadcaster", targets: ["HostBroadcaster"]),
        .library(name: "StateCastRelay", targets: ["StateCastRelay"]),
        .library(name: "ViewerClient", targets: ["ViewerClient"]),
        .executable(name: "statecast-host", targets: ["statecast-host"]),
        .executable(name: "statecast-viewer", targets: ["statecast-viewer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/pointfreeco/swift-clocks", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibWebSockets",
            pkgConfig: "libwebsockets",
            providers: [.apt(["libwebsockets-dev"])]
        ),
        .systemLibrary(name: "CQRencode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(
            name: "Envelope",
            dependencies: [.product(name: "OrderedCollections", package: "swift-collections")],
            swiftSettings: swiftSettings
        ),
        // Internal (no product): the monotonic clock and `Locked`, shared by
        // every library; no C dependency, so Debounce stays pure Swift.
        .target(
            name: "StateCastSupport",
            swiftSettings: swiftSettings
        ),
        // Internal (no product): what the host and the viewer share of
        // libwebsockets (the one process-wide log hook, header/query reading).
        .target(
            name: "LibWebSocketsSupport",
            dependencies: ["CLibWebSockets", "StateCastSupport"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Debounce",
            dependencies: ["Envelope", "StateCastSupport"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HostBroadcaster",
            dependencies: [
                "CLibWebSockets", "LibWebSocketsSupport", "StateCastSupport", "Envelope", "Debounce",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.embedInCode("web/index.html"), .embedInCode("web/statecast.js")],
            swiftSettings: swiftSettings
        ),
        // Redis publishing and relays (docs/SCALING.md): only apps that use
        // them need libhiredis.
        .target(
            name: "StateCastRelay",
            dependencies: [
                "HostBroadcaster", "CHiredis", "StateCastSupport", "Envelope",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ViewerClient",
            dependencies: [
                "CLibWebSockets", "LibWebSocketsSupport", "StateCastSupport", "Envelope",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "statecast-host",
            dependencies: [
                "HostBroadcaster", "StateCastRelay", "Envelope", "CQRencode",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "statecast-viewer",
            dependencies: [
                "ViewerClient", "Envelope",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test support: an in-process ViewerClient driven by the convergence test (Tests/EndToEndTests/python).
        .executableTarget(
            name: "statecast-convergence-agent",
            dependencies: ["ViewerClient", "Envelope"],
            path: "Tests/ConvergenceAgent",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "EnvelopeTests", dependencies: ["Envelope"], swiftSettings: swiftSettings),
        .testTarget(
            name: "DebounceTests",
            dependencies: ["Debounce", "StateCastSupport", "Envelope", .product(name: "Clocks", package: "swift-clocks")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HostBroadcasterTests",
            // ViewerClient: convergence checks apply what the host sends with the real viewer's rules (ViewerState).
            dependencies: [
                "HostBroadcaster", "StateCastRelay", "StateCastSupport", "ViewerClient", "Envelope", "Debounce",
                .product(name: "Clocks", package: "swift-clocks"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ViewerClientTests",
            dependencies: ["ViewerClient", "Envelope", .product(name: "Clocks", package: "swift-clocks")],
            swiftSettings: swiftSettings
        ),
    ]
)
