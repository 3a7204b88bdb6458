import GenerationCore
public import HTTPServer

/// `GET /generations/{name}`: the files of the output store, with their content type and caching
/// headers that end with the retention. A name that is not a file of the store is a 404.
public struct OutputRoutes: Sendable {
    public let store: any OutputStorage

    public init(store: any OutputStorage) {
        self.store = store
    }

    public func register(on router: inout Router) {
        router.add(.get, "/generations/{name}") { _, parameters in
            guard let file = await store.file(named: parameters["name"] ?? "") else {
                return .json(.notFound, Array(#"{"error":"no such generation; it may have expired"}"#.utf8))
            }
            var headers = HTTPHeaders()
            // A name is chosen before its image exists, so its extension may not be the format the
            // backend produced: the bytes say which it is.
            let format = file.kind == .base64 ? nil : ImageInspector.inspect(file.head)?.format
            headers.add("Content-Type", format?.mediaType ?? file.kind.contentType)
            // The name is unguessable but grants access: private, never stored by shared caches.
            headers.add("Cache-Control", "private, max-age=\(file.keptFor.components.seconds), immutable")
            headers.add("X-Content-Type-Options", "nosniff")
            guard file.size > file.head.count else { return HTTPResponse(status: .ok, headers: headers, bytes: file.head) }
            // The rest a piece at a time: the server waits for a slow client before the next piece.
            return HTTPResponse(status: .ok, headers: headers, body: .stream(length: file.size) { writer in try await file.send(writer.write) })
        }
    }
}
