// swift-tools-version:6.0
import PackageDescription

// Layers, bottom to top (each depends only on the ones above it in this list):
//   RSerPoolWire  – ASAP/ENRP messages and parameters (NIOCore only: no sockets, no clocks)
//   ProcessSupport – what runners, benchmarks and live tests share: child processes, the daemons' ready line, free ports, resident memory
//   RSerPoolCore  – handlespace, pool policies, registrar / PE / PU state machines (no sockets, injected time)
//   RSerPool      – NIO transports (TCP/MPTCP, TLS, UDP announces), the Registrar / PoolElement / PoolUser services and their daemons
//   Gateway       – SOCKS5 / HTTP proxy / gateway-pair protocol logic, destination policy, MPTCP telemetry (pure)
//   GatewayService – the NIO gateway: listeners, relays, upstream connections, telemetry readers, the daemon
//   Testbed       – testbed topologies and scenarios: the file formats, validation, the plan of ip/tc commands, results (pure)
//   TestbedRunner – running testbeds: bring-up and teardown, the scenario player, link emulator, traffic, experiments
//   PathManager   – MPTCP path health decisions and the netlink / mptcp_pm codec (pure)
//   PathManagerService – the kernel side: netlink sockets, endpoints and subflows, probes, the daemon
//   Benchmarks    – `edgepool bench`: registrar, simulator, gateway (against peer proxies) and abuse benchmarks
//   EdgePoolCLI   – the `edgepool` executable: a thin layer that turns options into configuration values
let package = Package(
    name: "EdgePool",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "RSerPoolWire", targets: ["RSerPoolWire"]),
        .library(name: "RSerPoolCore", targets: ["RSerPoolCore"]),
        .library(name: "RSerPool", targets: ["RSerPool"]),
        .library(name: "CalcApp", targets: ["CalcApp"]),
        .library(name: "CalcAppService", targets: ["CalcAppService"]),
        .library(name: "Gateway", targets: ["Gateway"]),
        .library(name: "GatewayService", targets: ["GatewayService"]),
        .library(name: "Testbed", targets: ["Testbed"]),
        .library(name: "TestbedRunner", targets: ["TestbedRunner"]),
        .library(name: "PathManager", targets: ["PathManager"]),
        .library(name: "PathManagerService", targets: ["PathManagerService"]),
        .library(name: "ProcessSupport", targets: ["ProcessSupport"]),
        .library(name: "Charts", targets: ["Charts"]),
        .executable(name: "edgepool", targets: ["EdgePoolCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        .target(
            name: "RSerPoolWire",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "RSerPoolCore",
            dependencies: ["RSerPoolWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "RSerPool",
            dependencies: [
                "RSerPoolWire", "RSerPoolCore", "ProcessSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "CalcApp",
            dependencies: ["RSerPoolWire", "RSerPoolCore", "Charts", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(name: "Charts"),
        .target(
            name: "CalcAppService",
            dependencies: [
                "CalcApp", "RSerPool", "RSerPoolCore", "RSerPoolWire", "ProcessSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "Gateway",
            dependencies: [
                "RSerPoolWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "GatewayService",
            dependencies: [
                "Gateway", "RSerPool", "RSerPoolCore", "RSerPoolWire", "ProcessSupport", "PathManager", "PathManagerService",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "Testbed",
            dependencies: ["RSerPoolWire", "RSerPoolCore", "PathManager"]
        ),
        .target(
            name: "TestbedRunner",
            dependencies: [
                "Testbed", "PathManager", "ProcessSupport", "RSerPool", "RSerPoolCore", "CalcApp", "CalcAppService", "Charts",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(
            name: "PathManager",
            dependencies: ["RSerPoolWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "PathManagerService",
            dependencies: [
                "PathManager", "RSerPoolWire", "RSerPool", "ProcessSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ProcessSupport",
            dependencies: [
                "RSerPoolWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(name: "CLinuxRelay"),
        .target(
            name: "Benchmarks",
            dependencies: [
                "RSerPool", "RSerPoolWire", "CalcApp", "ProcessSupport", "CLinuxRelay", "TestbedRunner",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "EdgePoolCLI",
            dependencies: [
                "RSerPool", "RSerPoolCore", "RSerPoolWire", "CalcApp", "CalcAppService", "Gateway", "GatewayService", "Testbed", "TestbedRunner", "PathManager", "PathManagerService", "ProcessSupport", "Benchmarks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // libFuzzer target for the ASAP decoder: scripts/fuzz builds it with -sanitize=fuzzer.
        // A plain build makes a replayer for corpus and crash files.
        .executableTarget(
            name: "EdgePoolFuzzer",
            dependencies: [
                "RSerPoolWire", "CalcApp", "Gateway", "PathManager",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "PathManagerTests",
            dependencies: ["PathManager", "PathManagerService", "RSerPool", "RSerPoolWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "CalcAppServiceTests",
            dependencies: [
                "CalcAppService", "CalcApp", "RSerPool", "RSerPoolCore", "RSerPoolWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "GatewayServiceTests",
            dependencies: [
                "GatewayService", "Gateway", "RSerPool", "RSerPoolWire", "PathManager",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ProcessSupportTests",
            dependencies: ["ProcessSupport"]
        ),
        .testTarget(name: "ChartsTests", dependencies: ["Charts"]),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks"]),
        .testTarget(
            name: "TestbedTests",
            dependencies: ["Testbed", "RSerPoolWire"]
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "RSerPoolWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "RSerPoolWireTests",
            dependencies: ["RSerPoolWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "RSerPoolCoreTests",
            dependencies: ["RSerPoolCore", "RSerPoolWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "CalcAppTests",
            dependencies: ["CalcApp", "RSerPoolCore", "RSerPoolWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "RSerPoolTests",
            dependencies: [
                "RSerPool", "RSerPoolCore", "RSerPoolWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "LiveTests",
            dependencies: [
                "RSerPool", "RSerPoolCore", "RSerPoolWire", "ProcessSupport", "TestbedRunner", "GatewayService", "PathManagerService",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["Support/origin.py", "Support/socks5_udp_client.py", "Support/recording_origin.py"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
