/// The disk tier's settings. `validate()` names the setting, the bad value and the
/// allowed range, so a typo in a config file fails at startup with a clear message.
public struct DiskStoreConfiguration: Sendable, Hashable {
  /// Folder holding the cache file (`cache.data`); created when missing.
  public var path: String
  /// Bytes of regions in the cache file (the file is 4 KiB larger: its header): the tier's byte budget. Rounded down to whole regions.
  public var size: Int
  /// Unit of writing and of reclaim. Large regions mean large sequential writes and a
  /// cheap FIFO; each open or flushing region costs its size in RAM.
  public var regionSize: Int
  /// Largest body piece written as one record: bounds the RAM of each write in flight.
  public var fragmentSize: Int
  /// The largest object accepted; larger writes fail with `objectTooLarge`.
  public var maxObjectSize: Int
  /// How often the open region's tail is written and the file fsynced: the durability
  /// point. An object whose finish() returned before the last completed flush survives
  /// a crash; later ones may be lost (never served torn).
  public var flushIntervalMilliseconds: Int
  /// What happens to objects of a region being reclaimed.
  public var reinsertion: ReinsertionRule
  /// Region writes bypass the page cache (O_DIRECT) where the file system allows it:
  /// no kernel copy of each byte, and the device writes while the next region fills
  /// instead of at the next fsync. Reads stay buffered. Off: every write goes through
  /// the page cache (recent objects are then read back from RAM, not the device).
  public var directWrites: Bool

  /// Which objects of a reclaimed region are written again instead of evicted.
  public enum ReinsertionRule: String, Sendable, Hashable, CaseIterable {
    /// Evict everything in the region (pure FIFO).
    case none
    /// Keep objects that were read since they were written, when they fit in one record
    /// (CacheLib's hits-based reinsertion; large objects are not worth rewriting).
    case accessedSinceWritten = "accessed"
  }

  public init(
    path: String,
    size: Int = 1 << 30,
    regionSize: Int = 16 << 20,
    fragmentSize: Int = 1 << 20,
    maxObjectSize: Int = 256 << 20,
    flushIntervalMilliseconds: Int = 1000,
    reinsertion: ReinsertionRule = .accessedSinceWritten,
    directWrites: Bool = true
  ) {
    self.path = path
    self.size = size
    self.regionSize = regionSize
    self.fragmentSize = fragmentSize
    self.maxObjectSize = maxObjectSize
    self.flushIntervalMilliseconds = flushIntervalMilliseconds
    self.reinsertion = reinsertion
    self.directWrites = directWrites
  }

  /// Where the embedded default store keeps its cache file: a folder in the working directory.
  public static let defaultPath = "edge-cdn-cache"

  public static let regionSizeRange = (64 << 10)...(1 << 30)
  public static let flushIntervalRange = 1...60_000
  /// Locations are kept in 36 bits of 16-byte units in the index.
  public static let maxFileSize = (1 << 36) * RecordFormat.alignment
  static let minimumRegions = 4

  /// Regions that fit in `size`. The file's 4 KiB header comes on top, so that a size of
  /// whole regions ("64MiB" of 16 MiB regions) gives that many regions, as an operator
  /// who sizes a cache in round figures expects.
  var regionCount: Int { size / regionSize }

  /// The largest `maxObjectSize` that `validate()` accepts for this size and region size:
  /// half of the regions that can be reclaimed, so that an object being written never
  /// has to evict itself.
  public var maxObjectSizeLimit: Int { max(0, (regionCount - 2) * regionSize / 2) }

  /// The largest head record an object within the limits may need.
  var maxHeadRecordSpace: Int {
    let fragments = maxObjectSize / fragmentSize + 1
    let blocks = maxObjectSize / RecordFormat.checkBlockSize + fragments
    return RecordFormat.recordSpace(
      payload: HeadRecord.payloadSize(
        metaLength: RecordFormat.maxMetaSize, fragmentCount: fragments, blockCount: blocks,
        inlineLength: RecordFormat.checkBlockSize))
  }

  public func validate() throws(ConfigurationError) {
    guard !path.isEmpty else {
      throw ConfigurationError(setting: "disk.path", value: "\"\"", allowed: "a folder path")
    }
    guard Self.regionSizeRange.contains(regionSize), regionSize % 4096 == 0 else {
      throw ConfigurationError(
        setting: "disk.regionSize", value: "\(regionSize)",
        allowed: "\(Self.regionSizeRange.lowerBound)...\(Self.regionSizeRange.upperBound), a multiple of 4096")
    }
    let minimumSize = Self.minimumRegions * regionSize
    guard (minimumSize...(Self.maxFileSize - RecordFormat.fileHeaderSize)).contains(size) else {
      throw ConfigurationError(
        setting: "disk.size", value: "\(size)",
        allowed:
          "\(minimumSize)...\(Self.maxFileSize - RecordFormat.fileHeaderSize) (at least \(Self.minimumRegions) regions of disk.regionSize)"
      )
    }
    let maxFragment = regionSize / 4
    guard (RecordFormat.checkBlockSize...maxFragment).contains(fragmentSize),
      fragmentSize % RecordFormat.checkBlockSize == 0
    else {
      throw ConfigurationError(
        setting: "disk.fragmentSize", value: "\(fragmentSize)",
        allowed: "\(RecordFormat.checkBlockSize)...\(maxFragment) (a quarter of disk.regionSize), "
          + "a multiple of \(RecordFormat.checkBlockSize)")
    }
    let maxObject = maxObjectSizeLimit
    guard (1...maxObject).contains(maxObjectSize) else {
      throw ConfigurationError(
        setting: "disk.maxObjectSize", value: "\(maxObjectSize)",
        allowed: "1...\(maxObject) (half of the regions that can be reclaimed)")
    }
    guard maxHeadRecordSpace <= regionSize - RecordFormat.regionHeaderSize else {
      throw ConfigurationError(
        setting: "disk.maxObjectSize", value: "\(maxObjectSize)",
        allowed: "small enough that its head record (\(maxHeadRecordSpace) bytes) fits in one disk.regionSize; "
          + "raise disk.fragmentSize or disk.regionSize")
    }
    guard Self.flushIntervalRange.contains(flushIntervalMilliseconds) else {
      throw ConfigurationError(
        setting: "disk.flushInterval", value: "\(flushIntervalMilliseconds)ms",
        allowed: "\(Self.flushIntervalRange.lowerBound)ms...\(Self.flushIntervalRange.upperBound / 1000)s")
    }
  }
}
