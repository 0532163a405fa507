// swift-tools-version: 6.1
import PackageDescription

/// Upcoming features we opt into everywhere, as Hummingbird 2 does: they make
/// dependencies explicit and keep `any` visible where an existential costs a box.
let swiftSettings: [SwiftSetting] = [
  .enableUpcomingFeature("ExistentialAny"),
  .enableUpcomingFeature("InternalImportsByDefault"),
  .enableUpcomingFeature("MemberImportVisibility"),
  .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

let package = Package(
  name: "edge-cdn-store",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "EdgeCDNStore", targets: ["EdgeCDNStore"]),
    .library(name: "EdgeCDNConfiguration", targets: ["EdgeCDNConfiguration"]),
    .executable(name: "edge-cdn-bench", targets: ["edge-cdn-bench"]),
    .library(name: "EdgeCDN", targets: ["EdgeCDN"]),
    .executable(name: "edge-cdn", targets: ["edge-cdn"]),
  ],
  traits: [
    // Off by default: builds async-http-client into edge-cdn-bench only, for
    // `edge-cdn-bench origin-client` (our OriginClient against it). A default build
    // neither fetches, builds nor links it (docs/performance.md).
    .trait(name: "OriginClientComparison", description: "edge-cdn-bench origin-client: compare with async-http-client")
  ],
  dependencies: [
    .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    .package(
      url: "https://github.com/apple/swift-configuration.git", from: "1.4.0",
      traits: [.defaults, "CommandLineArguments", "YAML"]),
    // YAML configuration files: swift-configuration's YAML trait reads them with Yams, and the
    // typo check walks the same Yams nodes to list the keys a file sets.
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
  ],
  targets: [
    // CRC-32C with the CPU's instruction (SSE 4.2): Swift cannot emit it and no allowed
    // package provides CRC-32C. EdgeCDNStore falls back to its own table-driven CRC.
    .target(name: "CCRC32C"),
    .target(
      name: "EdgeCDNStore",
      dependencies: [
        "CCRC32C",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        .product(name: "CoreMetrics", package: "swift-metrics"),
      ],
      swiftSettings: swiftSettings
    ),
    // The behaviour every Storage must show, as plain async checks that throw on a
    // violation, so any test framework (or a bench) can drive them with any factory.
    .target(
      name: "StorageConformance",
      dependencies: [
        "EdgeCDNStore",
        .product(name: "NIOCore", package: "swift-nio"),
      ],
      path: "Tests/StorageConformance",
      swiftSettings: swiftSettings
    ),
    // What every test target needs alike (a temporary folder), kept once.
    .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: swiftSettings),
    // Replays request traces and seeded synthetic workloads through eviction managers:
    // what `edge-cdn-bench simulate` runs, kept in a library so that it is tested.
    .target(
      name: "EdgeCDNSimulation",
      dependencies: ["EdgeCDNStore"],
      swiftSettings: swiftSettings
    ),
    .executableTarget(
      name: "edge-cdn-bench",
      dependencies: [
        "EdgeCDNStore",
        "EdgeCDNSimulation",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        // `origin-client`: our OriginClient against an in-process NIO origin (EdgeCDN's server).
        "EdgeCDN",
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(
          name: "AsyncHTTPClient", package: "async-http-client", condition: .when(traits: ["OriginClientComparison"])),
      ],
      swiftSettings: swiftSettings
    ),
    // Reads a StoreConfiguration from a JSON or YAML file, environment variables and command-line
    // arguments through swift-configuration; kept apart so the store itself has no such dependency.
    .target(
      name: "EdgeCDNConfiguration",
      dependencies: [
        "EdgeCDNStore",
        .product(name: "Configuration", package: "swift-configuration"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Yams", package: "Yams"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "EdgeCDNConfigurationTests",
      dependencies: [
        "EdgeCDNConfiguration",
        "TestSupport",
        "EdgeCDNStore",
        .product(name: "Configuration", package: "swift-configuration"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "EdgeCDNSimulationTests",
      dependencies: ["EdgeCDNSimulation", "EdgeCDNStore"],
      swiftSettings: swiftSettings
    ),
    // The caching reverse proxy: RFC 9111 logic as value types, a NIOHTTP1 server, a
    // small pooled origin client of our own (not async-http-client: it adds 2.5-4.5 min
    // to every clean build on 2 cores and CI builds from scratch), coalescing and admin.
    .target(
      name: "EdgeCDN",
      dependencies: [
        "EdgeCDNStore",
        "EdgeCDNConfiguration",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "CoreMetrics", package: "swift-metrics"),
      ],
      swiftSettings: swiftSettings
    ),
    .executableTarget(
      name: "edge-cdn",
      dependencies: [
        "EdgeCDN",
        "EdgeCDNStore",
        "EdgeCDNConfiguration",
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Prometheus", package: "swift-prometheus"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "EdgeCDNTests",
      dependencies: [
        "EdgeCDN",
        "TestSupport",
        "EdgeCDNStore",
        "EdgeCDNConfiguration",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "Prometheus", package: "swift-prometheus"),
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "EdgeCDNStoreTests",
      dependencies: [
        "EdgeCDNStore",
        "StorageConformance",
        "TestSupport",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
        .product(name: "MetricsTestKit", package: "swift-metrics"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: swiftSettings
    ),
  ]
)
