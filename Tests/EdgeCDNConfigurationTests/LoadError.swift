import EdgeCDNConfiguration
import EdgeCDNStore
import Foundation
import TestSupport
import Testing

/// The error `StoreConfiguration.load` ends in for these sources: a settings file of
/// `contents` (written as `fileName` in a fresh folder, so its extension picks the
/// format), environment and arguments. Nil, and an issue recorded at the caller, when
/// they load.
func loadError(
  file contents: String? = nil, named fileName: String = "edge-cdn.json", environment: [String: String] = [:],
  arguments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
) throws -> ConfigurationError? {
  let directory = try TemporaryDirectory()
  var path: String?
  if let contents {
    let file = directory.path + "/" + fileName
    try contents.write(toFile: file, atomically: true, encoding: .utf8)
    path = file
  }
  do {
    let configuration = try StoreConfiguration.load(
      file: path, environment: environment, arguments: ["edge-cdn"] + arguments)
    Issue.record("loaded \(configuration)", sourceLocation: sourceLocation)
    return nil
  } catch {
    return error
  }
}
