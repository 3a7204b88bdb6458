public import Foundation
public import GenerationCore

/// One alert for the operator, as its webhook body says it: Standard Webhooks' `type`,
/// `timestamp` and `data`.
public struct AlertEvent: Sendable, Equatable {
    /// The kinds of alert; each is a label of the alert metrics, so the set is fixed.
    public enum Kind: String, Sendable, CaseIterable {
        /// A key's or team's spending passed a threshold of a limit (its credits, its period budget).
        case creditsThreshold = "credits.threshold"
        /// An upstream answered with fewer remaining credits than `alerts.upstream_low_credits`.
        case upstreamCreditsLow = "upstream.credits_low"
        case upstreamDown = "upstream.down"
        case upstreamUp = "upstream.up"
        case workerDown = "worker.down"
        case workerUp = "worker.up"
    }

    public let kind: Kind
    /// What the alert is about, as JSON fields under `data`.
    public let data: [String: JSONValue]

    public init(kind: Kind, data: [String: JSONValue]) {
        self.kind = kind
        self.data = data
    }

    /// `{"type": ..., "timestamp": ..., "data": {...}}`, keys sorted so that a body is stable.
    public func body(at date: Date) -> [UInt8] {
        let object: JSONValue = .object([
            "type": .string(kind.rawValue), "timestamp": .string(ISO8601DateFormatter().string(from: date)), "data": .object(data),
        ])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings, numbers and objects of strings always encode.
        return Array((try? encoder.encode(object)) ?? Data("{}".utf8))
    }
}
