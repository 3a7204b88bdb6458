public import HTTPServer

extension Admission {
    /// Refuses an unknown, revoked or expired key from its head, so that a stranger cannot make
    /// the gateway read (and hold) a body of up to the route's limit. The handler authenticates
    /// again, from the ledger's memory of recent keys: a key revoked in between is still refused.
    func verifyKey(
        _ credentials: @escaping @Sendable (HTTPHeaders) -> Result<String, GatewayError>, renderer: some DialectRenderer
    ) -> Router.AsyncHeadCheck {
        { [self] head, _ in
            if case .failure(let refusal) = await authenticate(credentials(head.headers)) { return renderer.render(refusal) }
            return nil
        }
    }
}
