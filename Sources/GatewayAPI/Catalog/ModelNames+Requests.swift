import GenerationCore

extension ModelNames {
    /// The model name a request's `field` sends: nil when absent, null or empty (the default runs).
    static func name(in sent: JSONValue?, field: String) throws(GatewayError) -> String? {
        switch sent {
        case nil, .null?: return nil
        case .string(let text)?: return text.isEmpty ? nil : text
        // Long ASCII, kept as the body's bytes, is text all the same: a name that long is unknown.
        case .ascii(let text)?: return text.description
        case let other?: throw .invalidFields(["\(field): must be text, got \(other.brief)"])
        }
    }

    /// The model `name` (nil: the default) runs as for `task`, or the request's refusal: an unknown
    /// name, or one without a model for the task (`does` says, in the dialect's words, what the
    /// endpoint needs: `txt2img`, `image-to-image`).
    func resolve(
        _ name: String?, field: String, for task: GenerationTask, in catalog: ModelCatalog, does: String
    ) throws(GatewayError) -> (name: String, spec: ModelSpec) {
        let name = name ?? defaultName
        switch model(name, for: task, in: catalog) {
        case .success(let spec): return (name, spec)
        case .failure(.unknown): throw .unknownModel(name)
        case .failure(.otherTask): throw .invalidFields(["\(field): '\(name)' has no \(does) model on this gateway"])
        }
    }
}
