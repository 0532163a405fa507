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

  @Option(help: "The origin, http://host[:port].")
  var origin: String

  @Option(help: "Proxy listen address, host:port.")
  var listen = "127.0.0.1:8081"

  @Option(help: "Admin listen address (healthz, readyz, purge API), host:port; 'none' disables it.")
  var adminListen = "127.0.0.1:9091"

  @Option(help: "RAM tier byte budget in MiB (shorthand for --memory-byte-budget).")
  var memorySize: Int?

  @Option(help: "Largest object stored, in MiB.")
  var maxObjectSize = 16

  @Option(help: "A JSON configuration file of the store (docs/configuration.md); also EDGE_CDN_CONFIG.")
  var config: String?

  @Argument(
    parsing: .allUnrecognized,
    help:
      "Store settings as in docs/configuration.md: --memory-byte-budget 512MiB, --disk-path DIR, --disk-enabled false ..."
  )
  var storeSettings: [String] = []

  @Option(help: "Bearer token for PURGE and the admin purge API (at least 8 characters); purging is off without it.")
  var purgeToken: String?

  @Option(help: "Close connections idle for this many seconds.")
  var idleTimeout: Int64 = 60

  @Option(help: "Origin response timeout in seconds (then 504).")
  var originTimeout: Int64 = 30

  @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
  var logLevel = "info"

  @Flag(help: "Log every request at info level (by default access lines are at debug).")
  var accessLog = false

  func run() async throws {
    var logger = Logger(label: "edge-cdn")
    logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
    var configuration = ProxyConfiguration(
      origin: try ProxyConfiguration.Origin(url: origin),
      listen: try ProxyConfiguration.Address(parsing: listen, setting: "listen"))
    if adminListen != "none" {
      configuration.adminListen = try ProxyConfiguration.Address(parsing: adminListen, setting: "admin-listen")
    }
    configuration.purgeToken = purgeToken
    configuration.idleTimeoutSeconds = idleTimeout
    configuration.originResponseTimeoutSeconds = originTimeout
    configuration.accessLogAtInfo = accessLog
    configuration.maxCacheableObjectBytes = maxObjectSize << 20
    let log = logger
    // Store settings: these arguments > EDGE_CDN_* variables > the file > defaults.
    // EDGE_CDN_NIO_EXECUTOR is the executable's own switch, not a store setting.
    let environment = ProcessInfo.processInfo.environment.filter { $0.key != "EDGE_CDN_NIO_EXECUTOR" }
    var storeConfiguration = try StoreConfiguration.load(
      file: config, environment: environment, arguments: ["edge-cdn"] + storeSettings)
    if let memorySize { storeConfiguration.memory.byteBudget = memorySize << 20 }
    storeConfiguration.memory.maxObjectSize = min(
      storeConfiguration.memory.maxObjectSize, storeConfiguration.memory.byteBudget)
    try storeConfiguration.validate()
    let registry = PrometheusCollectorRegistry()
    let defaultStore = try await DefaultStore.make(
      configuration: storeConfiguration, registry: registry, logger: logger)
    let store = defaultStore.store
    let proxyBox = ProxyBox<DefaultStore.Store>()
    let app = try await EdgeCDNApplication.start(
      configuration: configuration, store: store, logger: logger,
      metrics: ProxyMetricsExposition(
        registry: registry, diskMetrics: defaultStore.diskMetrics, proxy: { proxyBox.proxy }),
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
