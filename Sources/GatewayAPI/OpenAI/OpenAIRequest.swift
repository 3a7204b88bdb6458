import ExtrasBase64
import GenerationCore
import HTTPServer

/// One Images API request, decoded and restated in the catalog's terms: which model it runs as,
/// its fields in that model's names, and how its images travel back.
struct OpenAIRequest {
    enum Endpoint: String, CaseIterable {
        case generations
        case edits
        case variations

        var task: GenerationTask { self == .generations ? .textToImage : .imageToImage }
    }

    let model: ModelSpec
    let fields: RestatedFields
    let wantsLinks: Bool

    /// What the client sent: JSON for generations, a form for edits and variations.
    struct Sent {
        var fields: [String: JSONValue] = [:]
        var images: [[UInt8]] = []
        var hasMask = false
    }

    static func decode(_ request: HTTPRequest, _ endpoint: Endpoint) throws(GatewayError) -> Sent {
        guard endpoint != .generations else {
            if request.headers.declaresOtherThanJSON { throw .unsupportedContentType }
            guard let fields = try? JSONObjectReader.decode(request.body) else { throw .malformedBody }
            return Sent(fields: fields)
        }
        let form: MultipartForm
        do {
            form = try MultipartForm(body: request.body, contentType: request.headers["Content-Type"])
        } catch {
            throw .malformedForm(error.reason)
        }
        var sent = Sent()
        for part in form.parts {
            switch part.name {
            // The SDKs send one image as `image` and several as `image[]`.
            case "image", "image[]": sent.images.append(part.bytes)
            case "mask": sent.hasMask = true
            default: sent.fields[part.name] = .string(part.text)
            }
        }
        return sent
    }

    /// The model the request runs as; nil names the default. Refused here: a model that is not
    /// text, unknown, or of the other task.
    static func model(of sent: Sent, _ endpoint: Endpoint, catalog: ModelCatalog) throws(GatewayError) -> (name: String, spec: ModelSpec) {
        try catalog.openAI.models.resolve(
            ModelNames.name(in: sent.fields["model"], field: "model"), field: "model", for: endpoint.task, in: catalog,
            does: endpoint.task.rawValue)
    }

    /// Restates the request in `spec`'s fields. Refuses what no model here does (a mask, several
    /// input images) and values OpenAI itself would refuse.
    init(_ sent: Sent, _ endpoint: Endpoint, model: (name: String, spec: ModelSpec), catalog: ModelCatalog, canLink: Bool) throws(GatewayError) {
        self.model = model.spec
        var fields = RestatedFields()
        if endpoint == .variations {
            fields.set(.prompt, .string(catalog.openAI.variationPrompt), from: "prompt")
        } else {
            fields.set(.prompt, sent.fields["prompt"], from: "prompt")
        }
        fields.set(.samples, sent.fields["n"], from: "n")
        if endpoint != .generations {
            if sent.hasMask {
                throw .unavailableOption("mask: masks are not supported: no inpainting model is configured on this gateway; send the image alone")
            }
            guard let image = sent.images.first else { throw .invalidFields(["image: is required"]) }
            guard sent.images.count == 1 else { throw .unavailableOption("image: this gateway's models take one input image; send one") }
            fields.set(.image, .ascii(ASCIIText(unchecked: ArraySlice(Base64.encodeToBytes(bytes: image)))), from: "image")
        }
        if let size = try Self.size(sent.fields["size"], for: model.spec, sizes: catalog.openAI.sizes) {
            fields.set(.width, .integer(Int64(size.width)), from: "size")
            fields.set(.height, .integer(Int64(size.height)), from: "size")
        }
        if FieldCoercion.flag(sent.fields["stream"]) == true {
            throw .unavailableOption("stream: partial images are not streamed on this gateway; send stream: false")
        }
        try Self.check(sent.fields["output_format"], "output_format", among: ["png", "jpeg", "webp"])
        try Self.check(sent.fields["response_format"], "response_format", among: ["b64_json", "url"])
        // OpenAI's own default: links for DALL·E, base64 for the GPT image models.
        let format = sent.fields["response_format"]?.text ?? (model.name.hasPrefix("dall-e") && canLink ? "url" : "b64_json")
        if format == "url" && !canLink {
            throw .unavailableOption(
                "response_format: url is not available: this gateway keeps no generated images (it runs without a ledger); use b64_json")
        }
        wantsLinks = format == "url"
        self.fields = fields
    }

    /// The size to run at: nil for `auto`, no size, or a model whose output keeps its input's size;
    /// an OpenAI size the model lacks runs at the size the catalog maps it to.
    private static func size(_ sent: JSONValue?, for model: ModelSpec, sizes: [String: ImageSize]) throws(GatewayError) -> ImageSize? {
        guard let sent, sent != .null else { return nil }
        guard let text = sent.text, text == "auto" || ImageSize(text) != nil else {
            throw .invalidFields(["size: must be auto or WIDTHxHEIGHT such as 1024x1024, got \(sent.brief)"])
        }
        guard let size = ImageSize(text), model.field(.width) != nil, model.field(.height) != nil else { return nil }
        if model.sizes?.contains(size) == false, let mapped = sizes[text] { return mapped }
        return size
    }

    private static func check(_ sent: JSONValue?, _ name: String, among allowed: [String]) throws(GatewayError) {
        guard let sent, sent != .null else { return }
        guard let text = sent.text, allowed.contains(text) else {
            throw .invalidFields(["\(name): must be one of \(allowed.joined(separator: ", ")), got \(sent.brief)"])
        }
    }
}
