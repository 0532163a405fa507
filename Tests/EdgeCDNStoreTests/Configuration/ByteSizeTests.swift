import EdgeCDNStore
import Testing

@Suite("ByteSize")
struct ByteSizeTests {
  @Test(
    "human units parse to exact byte counts",
    arguments: [
      ("4096", 4096), ("0", 0), ("512MiB", 512 << 20), ("2GB", 2_000_000_000), ("1.5 GiB", 1_610_612_736),
      ("64k", 64 << 10), ("64K", 64 << 10), ("64kb", 64_000), ("1KiB", 1024), ("1 B", 1), ("  7b ", 7),
      ("1TB", 1_000_000_000_000), ("1TiB", 1 << 40), ("1P", 1 << 50), ("0.5MB", 500_000), ("1.50KiB", 1536),
      ("3M", 3 << 20), ("3mib", 3 << 20), ("2g", 2 << 30),
    ] as [(String, Int)])
  func parses(text: String, bytes: Int) throws {
    #expect(try ByteSize(parsing: text, setting: "s").bytes == bytes)
  }

  @Test(
    "bad sizes are refused naming the setting, the value and what is allowed",
    arguments: [
      ("", "a size such as"), ("abc", "a size such as"), ("-5MiB", "not negative"), ("12XB", "a known unit"),
      ("1.5B", "whole number of bytes"), ("0.0001KB", "whole number of bytes"), ("1.", "a size such as"),
      (".5G", "a size such as"), ("+5", "a size such as"), ("5 M B", "a known unit"), ("1e9", "a known unit"),
      ("99999999999999999999", "at most 9223372036854775807 bytes"), ("9300PB", "at most 9223372036854775807 bytes"),
      ("8192PiB", "at most"), ("5MiB!", "a known unit"),
    ] as [(String, String)])
  func refuses(text: String, allowed: String) {
    do {
      let size = try ByteSize(parsing: text, setting: "memory.byteBudget")
      Issue.record("\"\(text)\" parsed as \(size)")
    } catch {
      #expect(error.setting == "memory.byteBudget")
      #expect(error.value == "\"\(text)\"")
      #expect(error.allowed.contains(allowed), "\(error)")
      #expect(error.description.hasPrefix("invalid memory.byteBudget = \"\(text)\": allowed "))
    }
  }

  @Test(
    "the description is the shortest exact spelling and parses back",
    arguments: [
      (0, "0B"), (4097, "4097B"), (1024, "1KiB"), (512 << 20, "512MiB"), (2_000_000_000, "2GB"),
      (1_610_612_736, "1536MiB"), (64_000, "64KB"), (1 << 50, "1PiB"),
    ] as [(Int, String)])
  func description(bytes: Int, text: String) throws {
    let size = ByteSize(bytes: bytes)
    #expect(size.description == text)
    #expect(try ByteSize(parsing: size.description, setting: "s") == size)
  }

  @Test("Int.max bytes is the largest size")
  func largest() throws {
    #expect(try ByteSize(parsing: "\(Int.max)", setting: "s").bytes == Int.max)
    #expect(throws: ConfigurationError.self) { try ByteSize(parsing: "\(UInt64(Int.max) + 1)", setting: "s") }
  }
}
