public import GenerationCore
public import Jobs

/// Where answers that link to their images keep them: the output store the asynchronous APIs
/// use, under the same unguessable names and retention, served at `/generations/{name}`.
public struct OutputLinks: Sendable {
    public let store: OutputStore

    public init(store: OutputStore) {
        self.store = store
    }

    /// The image's URL once kept; nil if it could not be written.
    func save(_ image: GeneratedImage, baseURL: String) -> String? {
        guard let name = try? store.save(image.bytes, as: OutputStore.Kind(image.format)) else { return nil }
        return "\(baseURL)/generations/\(name)"
    }
}
