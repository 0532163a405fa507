import EdgeCDNStore
import Testing

@Suite("DurationSetting")
struct DurationSettingTests {
  @Test(
    "durations with units parse to exact nanoseconds",
    arguments: [
      ("500ms", 500_000_000), ("30s", 30_000_000_000), ("5m", 300_000_000_000), ("1h", 3_600_000_000_000),
      ("1h30m", 5_400_000_000_000), ("1h 30m 15s", 5_415_000_000_000), ("1.5s", 1_500_000_000), ("250us", 250_000),
      ("7ns", 7), ("0s", 0), ("  2 MS ", 2_000_000), ("0.5m", 30_000_000_000),
    ] as [(String, Int64)])
  func parses(text: String, nanoseconds: Int64) throws {
    #expect(try DurationSetting(parsing: text, setting: "s").nanoseconds == nanoseconds)
  }

  @Test(
    "bad durations are refused naming the setting, the value and what is allowed",
    arguments: [
      ("", "a duration such as"), ("30", "a unit after every number"), ("-1s", "not negative"),
      ("5 minutes", "a known unit"), ("1.5ns", "whole number of nanoseconds"), ("s", "a duration such as"),
      ("1h30", "a unit after every number"), ("3000000h", "at most"), ("1d", "a known unit"), ("1s,", "a duration"),
    ] as [(String, String)])
  func refuses(text: String, allowed: String) {
    do {
      let duration = try DurationSetting(parsing: text, setting: "disk.flushInterval")
      Issue.record("\"\(text)\" parsed as \(duration)")
    } catch {
      #expect(error.setting == "disk.flushInterval")
      #expect(error.value == "\"\(text)\"")
      #expect(error.allowed.contains(allowed), "\(error)")
    }
  }

  @Test(
    "the description is exact and parses back",
    arguments: [
      (0, "0s"), (500_000_000, "500ms"), (90_000_000_000, "90s"), (7_200_000_000_000, "2h"), (1_500, "1500ns"),
    ] as [(Int64, String)])
  func description(nanoseconds: Int64, text: String) throws {
    let duration = DurationSetting(nanoseconds: nanoseconds)
    #expect(duration.description == text)
    #expect(try DurationSetting(parsing: text, setting: "s") == duration)
    #expect(duration.duration == .nanoseconds(nanoseconds))
  }
}
