import Foundation
import GatewayAPI
package import GenerationCore

extension GatewayConfiguration {
    /// `alerts.*`: the operator's alerts, signed webhooks to the operator's own receivers. With no
    /// URL there are none, and nothing is watched.
    package struct Alerts: Sendable {
        /// The receivers; each alert goes to every one of them.
        package var urls: [String] = []
        /// The operator's Standard Webhooks secret (`whsec_` and base64) the alerts are signed with.
        package var secret = ""
        /// Percentages of a key's or team's credits (spent since the last top-up, of what it had
        /// right after it), ascending; each is an alert when first reached.
        package var thresholds = [80, 100]
        /// An upstream reporting fewer remaining credits than this is an alert; nil: not watched.
        package var upstreamLowCredits: Credits?

        package init() {}

        package var isEnabled: Bool { !urls.isEmpty }
    }
}

/// `alerts.*`. Lists are one value, comma-separated, as routes are.
extension ConfigurationKey {
    /// Standard Webhooks libraries want 24 to 64 random bytes; fewer is too easy to guess.
    static let minimumSecretBytes = 16

    static let alerts: [ConfigurationKey] = [
        list(
            "alerts.urls", \.alerts.urls, "the operator's alert receivers, http(s) URLs; none: no alerts",
            // A receiver's path or query may be its secret (chat services' incoming webhooks).
            shown: { url in
                guard var parts = URLComponents(string: url), !parts.path.isEmpty || parts.query != nil else { return url }
                (parts.path, parts.query) = ("/(redacted)", nil)
                return parts.string ?? "(a URL)"
            }
        ) { url throws(ConfigurationValueError) in
            guard let parts = URLComponents(string: url), parts.scheme == "http" || parts.scheme == "https", parts.host?.isEmpty == false,
                parts.user == nil, parts.password == nil
            else {
                throw ConfigurationValueError("expected http(s) URLs such as https://alerts.example/sdgate separated by commas, got '\(url)'")
            }
            try ConfigurationValue.checkPort(of: parts, in: url)
        },
        ConfigurationKey(
            path: "alerts.secret",
            summary: "the Standard Webhooks secret (whsec_ and base64) alerts are signed with (a secret: prefer SDGATE_ALERTS_SECRET)",
            apply: { config, text throws(ConfigurationValueError) in
                guard text.hasPrefix("whsec_"), let bytes = Data(base64Encoded: String(text.dropFirst(6))),
                    bytes.count >= ConfigurationKey.minimumSecretBytes
                else {
                    throw ConfigurationValueError("expected whsec_ and the base64 of at least \(ConfigurationKey.minimumSecretBytes) random bytes")
                }
                config.alerts.secret = text
            }, render: { $0.alerts.secret.isEmpty ? "(none)" : "(set, redacted)" }),
        ConfigurationKey(
            path: "alerts.thresholds", summary: "percentages of a key's or team's credits spent since its last top-up, ascending, each alerted once",
            apply: { config, text throws(ConfigurationValueError) in
                let entries = text.split(separator: ",").map { String($0.trimmingSpaces()) }
                guard (1...10).contains(entries.count) else { throw ConfigurationValueError("expected 1 to 10 percentages, such as 80, 100") }
                var thresholds: [Int] = []
                for entry in entries {
                    let value = try ConfigurationValue.integer(entry, in: 1...100)
                    guard value > (thresholds.last ?? 0) else {
                        throw ConfigurationValueError("expected percentages in ascending order, each once, got '\(text)'")
                    }
                    thresholds.append(value)
                }
                config.alerts.thresholds = thresholds
            }, render: { $0.alerts.thresholds.map(String.init).joined(separator: ", ") }),
        ConfigurationKey(
            path: "alerts.upstream_low_credits",
            summary: "alert when an upstream reports fewer remaining credits than this (x-remaining-credits); empty: not watched",
            apply: { config, text throws(ConfigurationValueError) in
                guard let credits = Credits(decimal: text.trimmingSpaces()), credits > .zero, credits <= .maximum else {
                    throw ConfigurationValueError("expected a positive number of credits, such as 50 or 12.5, got '\(text)'")
                }
                config.alerts.upstreamLowCredits = credits
            }, render: { $0.alerts.upstreamLowCredits?.description ?? "(not watched)" }),
    ]
}

extension ConfigurationLoader {
    /// What the alert keys cannot check one value at a time.
    static func checkAlerts(_ configuration: GatewayConfiguration, origins: [String: String]) -> [String] {
        guard configuration.alerts.isEnabled, configuration.alerts.secret.isEmpty else { return [] }
        return ["\(origins["alerts.urls"] ?? ""): alerts.secret: is required with alerts.urls (a whsec_ secret; prefer SDGATE_ALERTS_SECRET)"]
    }
}
