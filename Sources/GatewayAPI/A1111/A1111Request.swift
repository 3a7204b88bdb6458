import GenerationCore

/// A `txt2img` or `img2img` call restated in its catalog model's fields.
struct A1111Request {
    let checkpoint: String
    let model: ModelSpec
    let fields: RestatedFields

    /// Which model answers: `override_settings.sd_model_checkpoint`, else the key's chosen
    /// checkpoint, else the catalog's default.
    static func checkpoint(in body: [String: JSONValue], chosen: String?) throws(GatewayError) -> String? {
        guard case .object(let overrides)? = body["override_settings"] else { return chosen }
        return try ModelNames.name(in: overrides["sd_model_checkpoint"], field: "override_settings.sd_model_checkpoint") ?? chosen
    }

    static func model(_ checkpoint: String?, for task: GenerationTask, catalog: ModelCatalog) throws(GatewayError) -> (name: String, spec: ModelSpec)
    {
        try catalog.a1111.resolve(
            checkpoint, field: "sd_model_checkpoint", for: task, in: catalog, does: task == .textToImage ? "txt2img" : "img2img")
    }

    init(_ body: [String: JSONValue], task: GenerationTask, checkpoint: String, model: ModelSpec) throws(GatewayError) {
        self.checkpoint = checkpoint
        self.model = model
        var fields = RestatedFields()
        fields.set(.prompt, body["prompt"], from: "prompt")
        fields.set(.negativePrompt, body["negative_prompt"], from: "negative_prompt")
        fields.set(.steps, body["steps"], from: "steps")
        fields.set(.guidanceScale, body["cfg_scale"], from: "cfg_scale")
        fields.set(.seed, body["seed"], from: "seed")
        fields.set(.width, body["width"], from: "width")
        fields.set(.height, body["height"], from: "height")
        if task == .imageToImage {
            fields.set(.strength, body["denoising_strength"], from: "denoising_strength")
            if let mask = body["mask"], mask != .null, mask != .string("") {
                throw .unavailableOption("mask: inpainting is not supported: no inpainting model is configured on this gateway; send no mask")
            }
            switch body["init_images"] {
            case .array(let images)? where images.count == 1: fields.set(.image, images[0], from: "init_images")
            case .array(let images)? where images.count > 1:
                throw .unavailableOption("init_images: this gateway's models take one input image; send one")
            case nil, .null?, .array?: throw .invalidFields(["init_images: is required (a list with one base64 image)"])
            case let other?: throw .invalidFields(["init_images: must be a list of base64 images, got \(other.brief)"])
            }
        }
        if let samples = try Self.samples(body) { fields.set(.samples, .integer(samples), from: "batch_size") }
        try A1111Samplers.restate(sampler: body["sampler_name"] ?? body["sampler_index"], scheduler: body["scheduler"], for: model, into: &fields)
        self.fields = fields
    }

    /// `batch_size` × `n_iter` images, each checked before they are multiplied.
    private static func samples(_ body: [String: JSONValue]) throws(GatewayError) -> Int64? {
        var product: Int64 = 1
        var sent = false
        for name in ["batch_size", "n_iter"] {
            switch body[name] {
            case nil, .null?: continue
            case .integer(let count)? where (1...100).contains(count):
                product *= count
                sent = true
            case let other?: throw .invalidFields(["\(name): must be a whole number from 1 to 100, got \(other.brief)"])
            }
        }
        return sent ? product : nil
    }
}
