public import GenerationCore
public import Jobs

/// Where answers that link to their images keep them: the output store the asynchronous APIs
/// use, under the same unguessable names and retention, served at `/generations/{name}`.
public struct OutputLinks: Sendable {
    public let store: any OutputStorage
    /// The gateway's address as a client reached it (its `Host` header), for the links.
    let baseURL: @Sendable (_ host: String?) -> String

    public init(store: any OutputStorage, baseURL: @escaping @Sendable (_ host: String?) -> String) {
        self.store = store
        self.baseURL = baseURL
    }

    /// The image's URL once kept; nil if it could not be written.
    func save(_ image: GeneratedImage, host: String?) async -> String? {
        let name = OutputStore.newName(OutputStore.Kind(image.format))
        guard (try? await store.save(image.bytes, named: name)) != nil else { return nil }
        return "\(baseURL(host))/generations/\(name)"
    }
}
