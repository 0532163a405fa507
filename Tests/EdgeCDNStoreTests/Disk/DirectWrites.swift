import Testing

@testable import EdgeCDNStore

#if canImport(Glibc)
  import Glibc
#endif

/// Whether region writes can bypass the page cache in a folder, for the tests run with
/// and without them: the store falls back to buffered writes, quietly, where the file
/// system refuses O_DIRECT (tmpfs), and a direct case that ran buffered proves nothing.
enum DirectWrites {
  /// Asked as the store asks: by opening a file there with O_DIRECT.
  static func available(in folder: String) -> Bool {
    #if canImport(Glibc)
      let probe = folder + "/direct-probe"
      let fd = open(probe, O_WRONLY | O_CREAT | O_CLOEXEC | FileDiskIO.directFlag, 0o644)
      if fd >= 0 { close(fd) }
      unlink(probe)
      return fd >= 0
    #else
      return false
    #endif
  }

  /// Skips (cancels) a direct case where the folder takes no O_DIRECT, and says so in
  /// the output: the console reports a cancelled test, not a cancelled case of one. A
  /// buffered case always runs.
  static func skipUnlessAvailable(_ direct: Bool, in folder: String) throws {
    guard direct, !available(in: folder) else { return }
    let reason = "O_DIRECT is refused in \(folder) (tmpfs?): the direct case would run buffered"
    print("➜ Skipped the direct case of \"\(Test.current?.displayName ?? Test.current?.name ?? "?")\": \(reason)")
    try Test.cancel(Comment(rawValue: reason))
  }

  /// Which path the region writes took, for the expectations' messages.
  static func path(_ direct: Bool) -> String { direct ? "direct (O_DIRECT)" : "buffered (page cache)" }
}
