import EdgeCDNStore
import Logging

/// The store `edge-cdn` embeds: the one place that chooses it. Today the RAM tier; when
/// the disk tier lands, this becomes RAM + disk in a local folder, and `flush` saves the
/// eviction state. The proxy itself is generic over `Storage` and does not change.
enum DefaultStore {
  static func make(memoryMiB: Int, maxObjectMiB: Int) throws -> MemoryStore {
    try MemoryStore(
      configuration: MemoryStoreConfiguration(byteBudget: memoryMiB << 20, maxObjectSize: maxObjectMiB << 20))
  }

  /// Called once after the listeners drained. RAM holds nothing to persist.
  static func flush(_ store: MemoryStore, logger: Logger) async {
    logger.info("store flushed", metadata: ["objects": "\(store.objectCount)", "bytes": "\(store.usedBytes)"])
  }
}
