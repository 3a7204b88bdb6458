/// One upstream service sdgate can forward generations to: the real Segmind or ModelsLab API, or
/// another sdgate. Its key is the team's own, read from an environment variable at start-up.
package struct Upstream: Sendable {
    /// Which wire format the upstream speaks.
    package enum Dialect: String, Sendable, CaseIterable {
        /// `POST {base}/v1/{slug}` with `x-api-key`.
        case segmind
        /// `POST {base}/api/v3/img2img|text2img` with `key` in the body, `processing` answers
        /// polled on `POST {base}/api/v3/fetch/{id}`.
        case modelslab
    }

    /// The name routes refer to; it also marks the usage events of the requests it served.
    package var name: String
    package var dialect: Dialect
    /// Where its API lives, without the version path: `https://api.segmind.com`.
    package var baseURL: String
    package var key: UpstreamKey
    /// The most one generation may take, polling and image downloads included (504 beyond).
    package var deadline: Duration
    /// Connections kept open to the upstream.
    package var poolSize: Int

    package init(name: String, dialect: Dialect, baseURL: String, key: UpstreamKey, deadline: Duration = .seconds(120), poolSize: Int = 8) {
        self.name = name
        self.dialect = dialect
        self.baseURL = baseURL
        self.key = key
        self.deadline = deadline
        self.poolSize = poolSize
    }
}

/// The team's key for an upstream. It is a secret: it prints as `(redacted)`, so that it cannot
/// reach a log line or an answer by accident.
package struct UpstreamKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    package let secret: String

    package init(_ secret: String) {
        self.secret = secret
    }

    package var description: String { "(redacted)" }
    package var debugDescription: String { "(redacted)" }
}
