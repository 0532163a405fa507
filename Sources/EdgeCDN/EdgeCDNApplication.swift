public import EdgeCDNStore
public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle

/// The proxy assembled: cache handler, proxy listener, admin listener, and the services
/// swift-service-lifecycle runs. Generic over the store, so the executable chooses it in
/// one place (and tests pass their own).
public struct EdgeCDNApplication<Store: Storage>: Sendable {
  public let proxy: CachingProxy<Store>
  public let server: HTTPServer<CachingProxy<Store>>
  public let admin: HTTPServer<AdminHandler<Store>>?
  public let readiness: Readiness
  let shutdownHook: ShutdownHook

  /// Validates the configuration and binds the listeners (a busy port fails here).
  /// `proxyMetrics` carries the latency histograms' handles, made with the backend's factory.
  /// `onShutdown` runs after the listeners drained: flush the store, save eviction state.
  public static func start(
    configuration: ProxyConfiguration, store: Store,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
    metrics: (any MetricsExposition)? = nil, proxyMetrics: ProxyMetrics = ProxyMetrics(),
    storeHealth: (@Sendable () async -> String?)? = nil,
    onShutdown: @escaping @Sendable () async -> Void = {}
  ) async throws -> EdgeCDNApplication {
    try configuration.validate()
    let origin = OriginClient(
      configuration: .init(
        host: configuration.origin.host, port: configuration.origin.port,
        maxIdleConnections: configuration.originMaxIdleConnections,
        connectTimeout: .seconds(configuration.originConnectTimeoutSeconds),
        responseTimeout: .seconds(configuration.originResponseTimeoutSeconds),
        readIdleTimeout: .seconds(configuration.originResponseTimeoutSeconds * 2)),
      group: group)
    let proxy = CachingProxy(
      store: store, origin: origin, configuration: configuration, logger: logger, metrics: proxyMetrics)
    let limits = HTTPServer<CachingProxy<Store>>.Limits(
      maxRequestLineBytes: configuration.maxRequestLineBytes, maxHeaderBytes: configuration.maxHeaderBytes,
      maxRequestBodyBytes: configuration.maxRequestBodyBytes, idleTimeout: .seconds(configuration.idleTimeoutSeconds),
      drainTimeout: .seconds(configuration.drainTimeoutSeconds))
    let server = try await HTTPServer(
      host: configuration.listen.host, port: configuration.listen.port, handler: proxy, limits: limits, group: group,
      logger: logger)
    let readiness = Readiness(check: storeHealth)
    var admin: HTTPServer<AdminHandler<Store>>?
    if let adminListen = configuration.adminListen {
      var adminLimits = HTTPServer<AdminHandler<Store>>.Limits()
      adminLimits.maxRequestBodyBytes = 64 << 10
      admin = try await HTTPServer(
        host: adminListen.host, port: adminListen.port,
        handler: AdminHandler(proxy: proxy, readiness: readiness, metrics: metrics), limits: adminLimits, group: group,
        logger: logger)
    }
    readiness.set(true)
    return EdgeCDNApplication(
      proxy: proxy, server: server, admin: admin, readiness: readiness,
      shutdownHook: ShutdownHook(readiness: readiness, origin: origin, action: onShutdown))
  }

  /// In start order; ServiceGroup stops them in reverse, so the hook (store flush) runs
  /// after both listeners have drained.
  public var services: [any Service] {
    [shutdownHook as any Service, server] + (admin.map { [$0 as any Service] } ?? [])
  }
}

/// Waits for graceful shutdown, then marks the process not ready, closes idle origin
/// connections and runs the store's flush.
struct ShutdownHook: Service {
  let readiness: Readiness
  let origin: OriginClient
  let action: @Sendable () async -> Void

  func run() async throws {
    try? await gracefulShutdown()
    readiness.set(false)
    origin.shutdown()
    await action()
  }
}
