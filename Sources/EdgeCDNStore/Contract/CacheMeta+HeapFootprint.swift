extension CacheMeta {
  /// Heap bytes of the decoded meta outside its own inline fields (which live in whatever
  /// holds the meta): the field array, every string too long to be held inline, the
  /// extensions. Strings shared with other metas are counted here all the same.
  public var heapFootprint: Int {
    var bytes =
      HeapFootprint.string(response.reason) + HeapFootprint.array(response.fields)
      + HeapFootprint.array(extensions)
    for field in response.fields { bytes += HeapFootprint.string(field.name) + HeapFootprint.string(field.value) }
    return bytes
  }
}
