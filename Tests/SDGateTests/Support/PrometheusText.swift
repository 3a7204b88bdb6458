import Foundation

/// A scrape in the Prometheus text format, parsed: every sample by its name and labels, and each
/// family's declared type. Strict enough to fail on a line a Prometheus server would reject.
struct PrometheusText {
    struct Sample: Hashable {
        let name: String
        let labels: [String: String]
    }

    private(set) var values: [Sample: Double] = [:]
    private(set) var types: [String: String] = [:]
    /// Lines that are neither a comment nor `name{labels} value`.
    private(set) var malformed: [String] = []

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
            } else if !line.hasPrefix("#"), let (sample, value) = Self.sample(line) {
                values[sample] = value
            } else if !line.hasPrefix("#") {
                malformed.append(String(line))
            }
        }
    }

    /// The value of one series; nil if the scrape lacks it.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        values[Sample(name: name, labels: labels)]
    }

    /// Every series of a name.
    func series(_ name: String) -> [Sample: Double] {
        values.filter { $0.key.name == name }
    }

    /// A histogram's cumulative buckets (`le` → count), in bucket order.
    func buckets(_ name: String, _ labels: [String: String]) -> [(le: Double, count: Double)] {
        series(name + "_bucket").compactMap { sample, count -> (Double, Double)? in
            var rest = sample.labels
            guard let le = rest.removeValue(forKey: "le"), rest == labels else { return nil }
            return (le == "+Inf" ? .infinity : Double(le) ?? .nan, count)
        }.sorted { $0.0 < $1.0 }
    }

    private static func sample(_ line: Substring) -> (Sample, Double)? {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
        let key = line[..<space]
        guard let open = key.firstIndex(of: "{") else { return (Sample(name: String(key), labels: [:]), value) }
        guard key.hasSuffix("}") else { return nil }
        var labels: [String: String] = [:]
        var rest = key[key.index(after: open)..<key.index(before: key.endIndex)]
        while !rest.isEmpty {
            guard let equals = rest.firstIndex(of: "="), rest[rest.index(after: equals)...].hasPrefix("\"") else { return nil }
            let name = String(rest[..<equals])
            var index = rest.index(equals, offsetBy: 2)
            var value = ""
            while index < rest.endIndex, rest[index] != "\"" {
                if rest[index] == "\\" { index = rest.index(after: index) }
                guard index < rest.endIndex else { return nil }
                value.append(rest[index])
                index = rest.index(after: index)
            }
            guard index < rest.endIndex else { return nil }
            labels[name] = value
            rest = rest[rest.index(after: index)...]
            if rest.hasPrefix(",") { rest = rest.dropFirst() }
        }
        return (Sample(name: String(key[..<open]), labels: labels), value)
    }
}
