/// What a tier says about itself, for readiness and liveness probes.
///
/// `degraded` still serves (some objects or a shared tier may be missing); `failed`
/// serves nothing from this tier. Reasons are short sentences an operator can act on.
public struct TierHealth: Sendable, Hashable, CustomStringConvertible {
  public enum Status: String, Sendable, Hashable, Comparable {
    case ok
    case degraded
    case failed

    private var rank: Int {
      switch self {
      case .ok: 0
      case .degraded: 1
      case .failed: 2
      }
    }

    public static func < (lhs: Status, rhs: Status) -> Bool { lhs.rank < rhs.rank }
  }

  public var tier: String
  public var status: Status
  public var reasons: [String]

  public init(tier: String, status: Status, reasons: [String] = []) {
    self.tier = tier
    self.status = status
    self.reasons = reasons
  }

  public var description: String {
    reasons.isEmpty ? "\(tier): \(status.rawValue)" : "\(tier): \(status.rawValue) (\(reasons.joined(separator: "; ")))"
  }
}

/// A tier (or a composition of tiers) that can report its health.
public protocol HealthReporting: Sendable {
  /// One entry per tier, top tier first.
  func health() async -> [TierHealth]
}

extension HealthReporting {
  /// The worst status of all tiers: what a readiness probe answers.
  public func overallStatus() async -> TierHealth.Status {
    await health().map(\.status).max() ?? .ok
  }
}

/// A tier's own accounting, read for the objects and bytes gauges.
public struct StorageStatistics: Sendable, Hashable {
  public var objectCount: Int
  public var usedBytes: Int

  public init(objectCount: Int, usedBytes: Int) {
    self.objectCount = objectCount
    self.usedBytes = usedBytes
  }
}

/// A tier that can report its accounting cheaply (a few atomic loads).
public protocol StatisticsReporting: Sendable {
  var storageStatistics: StorageStatistics { get }
}
