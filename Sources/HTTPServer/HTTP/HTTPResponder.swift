/// What answers requests: the server's single seam to the application.
public protocol HTTPResponder: Sendable {
    /// Decides on a request from its head alone, before its body is read: the body limit for it, or
    /// an answer that makes reading the body pointless (unknown route, wrong method, missing
    /// credentials). With `Expect: 100-continue` a rejection means the body is never sent.
    func admit(_ head: HTTPRequestHead) -> HTTPAdmission

    /// Answers a complete request. Runs as a task that is cancelled if the client goes away.
    func respond(to request: HTTPRequest) async -> HTTPResponse
}

extension HTTPResponder {
    public func admit(_ head: HTTPRequestHead) -> HTTPAdmission { .accept(maxBodyBytes: nil) }
}

public enum HTTPAdmission: Sendable {
    /// Read the body, up to `maxBodyBytes` (nil: the server's default limit), then call `respond`.
    /// `route`: what a `Router` matched, handed to `respond` in `HTTPRequest.route`.
    case accept(maxBodyBytes: Int?, route: Router.Match? = nil)
    /// Answer with this response without handing the request to `respond`.
    case reject(HTTPResponse)
    /// The decision needs a lookup that may wait (a key in a database): the connection reads no
    /// body byte, and sends no `100 Continue`, until it is made.
    case pending(@Sendable () async -> HTTPAdmission)

    /// The same admission with `transform` applied to the refusal it ends in, whenever that is made.
    public func mapRejection(_ transform: @escaping @Sendable (HTTPResponse) -> HTTPResponse) -> HTTPAdmission {
        switch self {
        case .accept: self
        case .reject(let response): .reject(transform(response))
        case .pending(let decision): .pending { await decision().mapRejection(transform) }
        }
    }
}
