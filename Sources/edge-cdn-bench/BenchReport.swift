/// Collects figures and prints them last, one `name=value` per line, so a script can
/// take the tail of the output whatever progress was printed before.
struct BenchReport {
  private(set) var figures: [(name: String, value: String)] = []

  mutating func record(_ name: String, _ value: Double, decimals: Int = 1) {
    figures.append((name, Self.format(value, decimals: decimals)))
  }

  mutating func record(_ name: String, _ value: Int) {
    figures.append((name, String(value)))
  }

  func printFigures() {
    for figure in figures { print("\(figure.name)=\(figure.value)") }
  }

  static func format(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "nan" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    if decimals == 0 { return String(Int(rounded)) }
    return String(rounded)
  }
}
