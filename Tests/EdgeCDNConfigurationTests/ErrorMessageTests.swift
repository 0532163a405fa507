import EdgeCDNConfiguration
import EdgeCDNStore
import Foundation
import Testing

/// Every way a value can be wrong ends in one `ConfigurationError` that names the key, the value
/// as written, what is allowed and where the value came from.
@Suite("Configuration errors")
struct ErrorMessageTests {
  @Test("an unparsable size in the environment names the variable")
  func badSizeInEnvironment() throws {
    let error = try #require(try loadError(environment: ["EDGE_CDN_MEMORY_BYTE_BUDGET": "12XB"]))
    #expect(error.setting == "memory.byteBudget")
    #expect(error.value == "\"12XB\"")
    #expect(error.allowed.contains("a known unit"))
    #expect(error.source == "environment variable EDGE_CDN_MEMORY_BYTE_BUDGET")
  }

  @Test("a non-integer shard count on the command line names the option")
  func badIntegerOnCommandLine() throws {
    let error = try #require(try loadError(arguments: ["--memory-shard-count", "many"]))
    #expect(error.setting == "memory.shardCount")
    #expect(error.value == "\"many\"")
    #expect(error.allowed == "an integer")
    #expect(error.source == "command-line option --memory-shard-count")
  }

  @Test("a wrong JSON type names the file and key")
  func wrongTypeInFile() throws {
    let error = try #require(try loadError(file: #"{"memory": {"shardCount": 2.5}}"#))
    #expect(error.setting == "memory.shardCount")
    #expect(error.value == "2.5")
    #expect(error.source?.hasSuffix("edge-cdn.json, key memory.shardCount") == true)
    let list = try #require(try loadError(file: #"{"memory": {"byteBudget": ["1GiB"]}}"#))
    #expect(list.setting == "memory.byteBudget")
    #expect(list.value == #"["1GiB"]"#)
    #expect(list.allowed.contains("a size such as"))
    let negative = try #require(try loadError(file: #"{"memory": {"byteBudget": -4096}}"#))
    #expect(negative.value == "-4096")
    let boolean = try #require(try loadError(file: #"{"memory": {"shardCount": true}}"#))
    #expect(boolean.value == "true")
    #expect(boolean.allowed == "an integer")
  }

  @Test(
    "each memory setting out of range is refused after reading, with its source",
    arguments: [
      (["EDGE_CDN_MEMORY_BYTE_BUDGET": "4095"], "memory.byteBudget", "4095", "at least 4096 bytes"),
      (["EDGE_CDN_MEMORY_MAX_OBJECT_SIZE": "1GiB"], "memory.maxObjectSize", "1073741824", "1...268435456"),
      (["EDGE_CDN_MEMORY_MAX_OBJECT_SIZE": "0"], "memory.maxObjectSize", "0", "1...268435456"),
      (["EDGE_CDN_MEMORY_SHARD_COUNT": "0"], "memory.shardCount", "0", "1...4096"),
      (["EDGE_CDN_MEMORY_SHARD_COUNT": "5000"], "memory.shardCount", "5000", "1...4096"),
    ] as [([String: String], String, String, String)])
  func outOfRange(environment: [String: String], setting: String, value: String, allowed: String) throws {
    let error = try #require(try loadError(environment: environment))
    #expect(error.setting == setting)
    #expect(error.value == value)
    #expect(error.allowed.contains(allowed), "\(error)")
    #expect(error.source == "environment variable \(try #require(environment.keys.first))")
  }

  @Test("malformed JSON is refused with the file's path and the parser's reason")
  func malformedFile() throws {
    let error = try #require(try loadError(file: #"{"memory": {"byteBudget": "1GiB",}"#))
    #expect(error.setting == "configuration file")
    #expect(error.value.hasSuffix("edge-cdn.json\""))
    #expect(error.allowed.hasPrefix("well-formed JSON ("))
    #expect(error.allowed.count > "well-formed JSON ()".count)
  }

  @Test("a JSON syntax error is placed by line and column")
  func syntaxErrorPosition() throws {
    let error = try #require(try loadError(file: "{\n  \"memory\": {\n    \"byteBudget\": 1GiB\n  }\n}\n"))
    #expect(error.setting == "configuration file")
    #expect(error.allowed.hasPrefix("well-formed JSON (line 3, column 20: "), "\(error)")
  }

  @Test("a file whose top level is not an object is refused")
  func topLevelNotObject() throws {
    let error = try #require(try loadError(file: "[1, 2]"))
    #expect(error.setting == "configuration file")
    #expect(error.allowed.contains("a JSON object at the top level"))
  }

  @Test("a missing file is refused with its path")
  func missingFile() {
    do {
      _ = try StoreConfiguration.load(file: "/nonexistent/edge-cdn.json", environment: [:], arguments: [])
      Issue.record("a missing file must be refused")
    } catch {
      #expect(error.setting == "configuration file")
      #expect(error.value == "\"/nonexistent/edge-cdn.json\"")
      #expect(error.allowed.hasPrefix("a readable file"))
    }
  }

  @Test("a misspelt key in the file is refused with a suggestion")
  func unknownFileKey() throws {
    let error = try #require(try loadError(file: #"{"memory": {"byteBudgte": "1GiB"}}"#))
    #expect(error.setting == "memory.byteBudgte")
    #expect(error.value == "\"1GiB\"")
    #expect(error.allowed.hasSuffix("did you mean memory.byteBudget?"))
    #expect(error.source?.hasPrefix("file ") == true)
  }

  @Test("a misspelt EDGE_CDN_ variable is refused; others are ignored")
  func unknownEnvironmentVariable() throws {
    let error = try #require(try loadError(environment: ["EDGE_CDN_MEMORY_SHARDS": "8", "HOME": "/root"]))
    #expect(error.setting == "EDGE_CDN_MEMORY_SHARDS")
    #expect(error.allowed.contains("did you mean EDGE_CDN_MEMORY_SHARD_COUNT?"))
    // A variable shadowed by a command-line option is still a known one.
    let configuration = try StoreConfiguration.load(
      file: nil, environment: ["EDGE_CDN_MEMORY_SHARD_COUNT": "8", "HOME": "/root"],
      arguments: ["edge-cdn", "--memory-shard-count", "4"])
    #expect(configuration.memory.shardCount == 4)
  }
}
