import ArgumentParser
import EdgeCDN
import EdgeCDNConfiguration
import EdgeCDNStore
import Foundation
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// `edge-cdn`: the caching reverse proxy in front of one origin.
@main
struct EdgeCDNCommand: AsyncParsableCommand {
  /// EDGE_CDN_NIO_EXECUTOR=1 runs Swift concurrency on the NIO event loops (no hop
  /// between the loop and the cooperative pool per request). Off by default: measured
  /// on the shared 2-core machine it served hot 1 KiB hits at 5-8k req/s against
  /// 12.7-14.8k without it (docs/performance.md, "Proxy"). Set before any task runs.
  static func main() async {
    if getenv("EDGE_CDN_NIO_EXECUTOR").map({ String(cString: $0) }) == "1" {
      _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
    do {
      var command = try parseAsRoot()
      if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch {
      exit(withError: error)
    }
  }

  static let configuration = CommandConfiguration(
    commandName: "edge-cdn", abstract: "A caching reverse proxy (RFC 9111) on the edge-cdn-store tiers.")

  // The options below are shorthands for settings (CommandLineShorthand): the file and
  // EDGE_CDN_* variables can set the same settings, and an option given here wins.

  @Option(help: "The origin, http://host[:port] (setting proxy.origin.url; required from some source).")
  var origin: String?

  @Option(help: "Proxy listen address, host:port (setting proxy.listen, default 127.0.0.1:8081).")
  var listen: String?

  @Option(
    help:
      "Admin listen address (metrics, healthz, readyz, purge API), host:port, or 'none' (setting proxy.adminListen, default 127.0.0.1:9091)."
  )
  var adminListen: String?

  @Option(help: "RAM tier byte budget, in MiB when a bare number (setting memory.byteBudget, default 256MiB).")
  var memorySize: String?

  @Option(help: "Largest object cached, in MiB when a bare number (setting proxy.cache.maxObjectSize, default 16MiB).")
  var maxObjectSize: String?

  @Option(
    help: "The configuration file, JSON or (named *.yaml, *.yml) YAML (docs/configuration.md); also EDGE_CDN_CONFIG.")
  var config: String?

  @Argument(
    parsing: .allUnrecognized,
    help:
      "Any setting of docs/configuration.md as an option: --memory-byte-budget 512MiB, --disk-path DIR, --proxy-cache-lock-timeout 2s ..."
  )
  var settings: [String] = []

  @Option(
    help:
      "Bearer token for PURGE and the admin purge API, at least 8 characters (setting proxy.purgeToken); purging is off without it."
  )
  var purgeToken: String?

  @Option(
    help:
      "Close connections idle this long, in seconds when a bare number (setting proxy.limits.idleTimeout, default 60s)."
  )
  var idleTimeout: String?

  @Option(
    help:
      "Origin response timeout, then 504; in seconds when a bare number (setting proxy.origin.responseTimeout, default 30s)."
  )
  var originTimeout: String?

  @Option(
    help: "Log level: trace, debug, info, notice, warning, error, critical (setting proxy.logLevel, default info).")
  var logLevel: String?

  @Flag(help: "Log every request at info level; by default access lines are at debug (setting proxy.accessLog).")
  var accessLog = false

  /// The settings' command-line arguments: the options given as settings, then the shorthands.
  var settingsArguments: [String] {
    let shorthands: [(CommandLineShorthand, String?)] = [
      (.origin, origin), (.listen, listen), (.adminListen, adminListen), (.memorySize, memorySize),
      (.maxObjectSize, maxObjectSize), (.purgeToken, purgeToken), (.idleTimeout, idleTimeout),
      (.originTimeout, originTimeout), (.logLevel, logLevel), (.accessLog, accessLog ? "true" : nil),
    ]
    return ["edge-cdn"] + settings + shorthands.flatMap { shorthand, value in value.map(shorthand.arguments) ?? [] }
  }

  func run() async throws {
    var logger = Logger(label: "edge-cdn")
    // Settings: command line > EDGE_CDN_* variables > the file > defaults, for the store and
    // the proxy alike. EDGE_CDN_NIO_EXECUTOR is read before any task runs, not a setting.
    let environment = ProcessInfo.processInfo.environment.filter { $0.key != "EDGE_CDN_NIO_EXECUTOR" }
    let loaded = try await EdgeCDNSettings.load(
      from: ConfigurationSources(file: config, environment: environment, arguments: settingsArguments))
    let configuration = loaded.proxy
    let storeConfiguration = loaded.store
    logger.logLevel = configuration.logLevel
    for setting in loaded.resolved { logger.debug("setting \(setting)") }
    FileDescriptorLimit.raiseToHard(logger: logger)
    let log = logger
    let registry = PrometheusCollectorRegistry()
    let defaultStore = try await DefaultStore.make(
      configuration: storeConfiguration, registry: registry, logger: logger)
    let store = defaultStore.store
    let proxyBox = ProxyBox<DefaultStore.Store>()
    let app = try await EdgeCDNApplication.start(
      configuration: configuration, store: store, logger: logger,
      metrics: ProxyMetricsExposition(
        registry: registry, diskMetrics: defaultStore.diskMetrics, tierMetrics: defaultStore.tierMetrics,
        proxy: { proxyBox.proxy }),
      proxyMetrics: ProxyMetrics(factory: defaultStore.metricsFactory),
      storeHealth: { await defaultStore.healthProblem() },
      onShutdown: { await defaultStore.flush(logger: log) })
    proxyBox.set(app.proxy)
    logger.info(
      "edge-cdn listening",
      metadata: [
        "listen": "\(app.server.localAddress.map { "\($0)" } ?? "?")",
        "admin": "\(app.admin?.localAddress.map { "\($0)" } ?? "off")", "origin": "\(configuration.origin)",
      ])
    let group = ServiceGroup(
      configuration: .init(services: app.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
    logger.info("edge-cdn stopped")
  }
}

/// The proxy exists only after start() returns; /metrics asks for it lazily.
final class ProxyBox<Store: Storage>: Sendable {
  private let value = Mutex<CachingProxy<Store>?>(nil)
  var proxy: CachingProxy<Store>? { value.withLock { $0 } }
  func set(_ proxy: CachingProxy<Store>) { value.withLock { $0 = proxy } }
}
