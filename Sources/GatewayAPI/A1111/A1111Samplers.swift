import GenerationCore

/// AUTOMATIC1111's sampler and scheduler names, and what each runs as on a catalog model: a
/// diffusers scheduler name on the SD 1.5 and SDXL models (`scheduler`), a ComfyUI sampler and
/// scheduler on SD3 (`sampler`, `scheduler`). A name with no counterpart on the model is refused:
/// a request is never run with another sampler than the one it names.
enum A1111Samplers {
    /// Every sampler name A1111 offers, in its own order.
    static let names = [
        "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M SDE", "DPM++ 2S a", "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a",
        "DPM fast", "DPM adaptive", "DDIM", "PLMS", "UniPC", "LCM", "DDPM",
    ]

    /// On SD 1.5 and SDXL, with A1111's automatic scheduler: the catalog's scheduler names.
    private static let diffusers: [String: String] = [
        "DPM++ 2M": "DPM Multi", "DPM++ SDE": "dpmpp_sde_ancestral", "Euler a": "Euler a", "Euler": "Euler", "LMS": "LMS",
        "Heun": "Heun", "DDIM": "DDIM", "PLMS": "PNDM", "UniPC": "UniPC", "DDPM": "DDPM",
    ]
    /// On SD 1.5 and SDXL with the Karras schedule.
    private static let diffusersKarras: [String: String] = ["DPM2": "DPM2 Karras", "DPM2 a": "DPM2 a Karras"]

    /// On SD3: ComfyUI's sampler names.
    private static let comfy: [String: String] = [
        "DPM++ 2M": "dpmpp_2m", "DPM++ SDE": "dpmpp_sde", "DPM++ 2M SDE": "dpmpp_2m_sde", "DPM++ 3M SDE": "dpmpp_3m_sde",
        "DPM++ 2S a": "dpmpp_2s_ancestral", "Euler a": "euler_ancestral", "Euler": "euler", "LMS": "lms", "Heun": "heun", "DPM2": "dpm_2",
        "DPM2 a": "dpm_2_ancestral", "DPM fast": "dpm_fast", "DPM adaptive": "dpm_adaptive", "DDIM": "ddim", "UniPC": "uni_pc",
        "LCM": "lcm", "DDPM": "ddpm",
    ]

    /// A1111's schedulers (name, label) and ComfyUI's name for each; `automatic` is the sampler's own.
    static let schedulers: [(name: String, label: String, comfy: String?)] = [
        ("automatic", "Automatic", nil), ("uniform", "Uniform", "normal"), ("karras", "Karras", "karras"),
        ("exponential", "Exponential", "exponential"), ("sgm_uniform", "SGM Uniform", "sgm_uniform"), ("simple", "Simple", "simple"),
        ("normal", "Normal", "normal"), ("ddim", "DDIM", "ddim_uniform"), ("beta", "Beta", "beta"),
    ]

    /// Sets the model's sampler and scheduler fields from A1111's `sampler_name` (older clients
    /// write the schedule into it: `DPM++ 2M Karras`) and `scheduler`.
    static func restate(sampler: JSONValue?, scheduler: JSONValue?, for model: ModelSpec, into fields: inout RestatedFields) throws(GatewayError) {
        var name = try text(sampler, "sampler_name")
        var schedule: (name: String, label: String, comfy: String?)?
        if let sent = try text(scheduler, "scheduler")?.lowercased() {
            guard let known = schedulers.first(where: { $0.name == sent || $0.label.lowercased() == sent }) else {
                throw .unavailableOption("scheduler: '\(sent)' is not one of \(schedulers.map(\.name).joined(separator: ", "))")
            }
            schedule = known
        }
        for suffix in [" Karras", " Exponential"] where name?.hasSuffix(suffix) == true {
            name = name.map { String($0.dropLast(suffix.count)) }
            let named = schedulers.first { $0.label == String(suffix.dropFirst()) }
            // Two schedules asked for: which one the client meant is not for the gateway to guess.
            if let sent = schedule, sent.name != "automatic", sent.name != named?.name {
                throw .unavailableOption(
                    "scheduler: '\(sent.name)' is not the schedule sampler_name names ('\(suffix.dropFirst())'); send one of them")
            }
            schedule = named
        }
        if schedule?.name == "automatic" { schedule = nil }
        guard name != nil || schedule != nil else { return }
        if let field = model.field(.sampler) {
            if let name {
                guard let value = comfy[name], allows(field, value) else { throw cannotRun(sampler, on: model) }
                fields.set(.sampler, .string(value), from: "sampler_name")
            }
            if let schedule {
                guard let value = schedule.comfy, let field = model.field(.scheduler), allows(field, value) else {
                    throw cannotRun(scheduler, on: model)
                }
                fields.set(.scheduler, .string(value), from: "scheduler")
            }
        } else if let field = model.field(.scheduler) {
            let table = schedule == nil ? diffusers : schedule?.name == "karras" ? diffusersKarras : [:]
            guard let value = table[name ?? "Euler"], allows(field, value) else { throw cannotRun(sampler ?? scheduler, on: model) }
            fields.set(.scheduler, .string(value), from: "sampler_name")
        }
    }

    /// The sampler names that run on `model` with A1111's automatic scheduler.
    static func runnable(on model: ModelSpec) -> [String] {
        names.filter { name in
            if let field = model.field(.sampler) { return comfy[name].map { allows(field, $0) } ?? false }
            if let field = model.field(.scheduler) { return diffusers[name].map { allows(field, $0) } ?? false }
            return false
        }
    }

    private static func allows(_ field: FieldSpec, _ value: String) -> Bool {
        field.allowed?.contains { FieldCoercion.matches($0, .string(value)) } ?? true
    }

    private static func text(_ value: JSONValue?, _ name: String) throws(GatewayError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text.isEmpty ? nil : text
        case let other?: throw .invalidFields(["\(name): must be text, got \(other.brief)"])
        }
    }

    private static func cannotRun(_ sent: JSONValue?, on model: ModelSpec) -> GatewayError {
        .unavailableOption(
            "sampler_name: \(sent?.brief ?? "this sampler") cannot run on \(model.slug); it runs \(runnable(on: model).joined(separator: ", "))")
    }
}
