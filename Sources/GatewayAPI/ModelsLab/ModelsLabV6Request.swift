import GenerationCore

/// A v6 `images/text2img` or `images/img2img` body, restated in the catalog model its `model_id`
/// names. v6 has v3's fields plus `model_id`; where v3's endpoints have one model each with
/// fields of their own, v6 reaches every model through the same names.
enum ModelsLabV6Request {
    static func model(of body: [String: JSONValue], task: GenerationTask, catalog: ModelCatalog) throws(GatewayError) -> ModelSpec {
        try catalog.modelsLabV6.resolve(
            ModelNames.name(in: body["model_id"], field: "model_id"), field: "model_id", for: task, in: catalog,
            does: task == .textToImage ? "text2img" : "img2img"
        ).spec
    }

    static func fields(_ body: [String: JSONValue], task: GenerationTask, model: ModelSpec) throws(GatewayError) -> RestatedFields {
        var fields = RestatedFields()
        for (name, role) in [
            ("prompt", FieldRole.prompt), ("negative_prompt", .negativePrompt), ("width", .width), ("height", .height),
            ("samples", .samples), ("num_inference_steps", .steps), ("guidance_scale", .guidanceScale), ("seed", .seed),
        ] {
            fields.set(role, body[name], from: name)
        }
        if task == .imageToImage {
            fields.set(.image, body["init_image"], from: "init_image")
            fields.set(.strength, body["strength"], from: "strength")
        }
        // A URL list by default, as ModelsLab answers; base64 files with "yes".
        fields.set(.base64, body["base64"] ?? .bool(false), from: "base64")
        try ModelsLabSchedulers.restate(body["scheduler"], for: model, into: &fields)
        return fields
    }
}
