public import Logging

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The process's limit on open files: edge-cdn raises it at start, and the RAM tier
/// sizes its share of descriptors from it (`MemoryFile.openFilesLimit`).
///
/// Why raise it: the RAM tier keeps each large body in a memfd (one descriptor per object:
/// a 512 MiB tier of 64 KiB bodies holds up to 8k), besides the clients' sockets; the
/// usual soft limit of 1024 would make most of those bodies fall back to buffers (counted,
/// never lost) and refuse connections early.
public enum FileDescriptorLimit {
  #if os(Linux)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
  #else
    private static let resource = RLIMIT_NOFILE
  #endif

  /// The soft limit now; nil when it cannot be read.
  static var soft: UInt64? {
    var limit = rlimit()
    guard getrlimit(resource, &limit) == 0 else { return nil }
    return UInt64(limit.rlim_cur)
  }

  /// Raises the soft limit to the hard limit, logging the outcome.
  public static func raiseToHard(logger: Logger) {
    var limit = rlimit()
    guard getrlimit(resource, &limit) == 0 else {
      logger.warning("open-file limit unknown", metadata: ["errno": "\(errno)"])
      return
    }
    let before = limit.rlim_cur
    if limit.rlim_cur < limit.rlim_max {
      limit.rlim_cur = limit.rlim_max
      if setrlimit(resource, &limit) != 0 {
        logger.warning(
          "open-file limit not raised",
          metadata: ["soft": "\(before)", "hard": "\(limit.rlim_max)", "errno": "\(errno)"])
        return
      }
    }
    logger.info("open-file limit", metadata: ["soft": "\(limit.rlim_cur)", "was": "\(before)"])
  }
}
