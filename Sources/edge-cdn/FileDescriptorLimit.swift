import Logging

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Raises the soft limit on open files to the hard limit at startup.
///
/// Why: the RAM tier keeps each large body in a memfd (one descriptor per object: a
/// 512 MiB tier of 64 KiB bodies holds up to 8k), besides the clients' sockets; the usual
/// soft limit of 1024 would make most of those bodies fall back to buffers (counted, never
/// lost) and refuse connections early.
enum FileDescriptorLimit {
  static func raiseToHard(logger: Logger) {
    var limit = rlimit()
    guard get(&limit) == 0 else {
      logger.warning("open-file limit unknown", metadata: ["errno": "\(errno)"])
      return
    }
    let before = limit.rlim_cur
    if limit.rlim_cur < limit.rlim_max {
      limit.rlim_cur = limit.rlim_max
      if set(&limit) != 0 {
        logger.warning(
          "open-file limit not raised",
          metadata: ["soft": "\(before)", "hard": "\(limit.rlim_max)", "errno": "\(errno)"])
        return
      }
    }
    logger.info("open-file limit", metadata: ["soft": "\(limit.rlim_cur)", "was": "\(before)"])
  }

  private static func get(_ limit: inout rlimit) -> Int32 {
    #if os(Linux)
      getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    #else
      getrlimit(RLIMIT_NOFILE, &limit)
    #endif
  }

  private static func set(_ limit: inout rlimit) -> Int32 {
    #if os(Linux)
      setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    #else
      setrlimit(RLIMIT_NOFILE, &limit)
    #endif
  }
}
