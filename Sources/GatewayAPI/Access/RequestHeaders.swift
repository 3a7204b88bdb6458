package import HTTPServer

extension HTTPHeaders {
    /// The token of `Authorization: Bearer <token>`, as every dialect and the admin API take it;
    /// nil when there is none or it is empty.
    package var bearerToken: String? {
        guard let authorization = self["Authorization"], authorization.lowercased().hasPrefix("bearer ") else { return nil }
        let token = authorization.dropFirst(7).trimmingSpaces()
        return token.isEmpty ? nil : String(token)
    }

    /// The body says it is something other than JSON: a Content-Type but `application/json` (with
    /// parameters such as `charset`). None at all is read as JSON, as scripts send it.
    var declaresOtherThanJSON: Bool {
        guard let contentType = self["Content-Type"] else { return false }
        return contentType.split(separator: ";").first?.trimmingSpaces().lowercased() != "application/json"
    }
}
