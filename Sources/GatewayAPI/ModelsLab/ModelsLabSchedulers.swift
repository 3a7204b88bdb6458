import GenerationCore

/// ModelsLab's scheduler names (diffusers' class names) and what each runs as on a catalog model
/// (`ModelsLabSchedulerNames`): the catalog's scheduler names on SD 1.5 and SDXL, ComfyUI's sampler
/// names on SD3. A name with no counterpart on the model is refused, never replaced by another
/// scheduler.
enum ModelsLabSchedulers {
    /// Sets the model's scheduler (or SD3's sampler) from ModelsLab's `scheduler`.
    static func restate(_ sent: JSONValue?, for model: ModelSpec, into fields: inout RestatedFields) throws(GatewayError) {
        guard let sent, sent != .null else { return }
        guard case .string(let name) = sent else { throw .invalidFields(["scheduler: must be text, got \(sent.brief)"]) }
        let (role, table): (FieldRole, [String: String]) =
            model.field(.sampler) != nil ? (.sampler, ModelsLabSchedulerNames.samplers) : (.scheduler, ModelsLabSchedulerNames.schedulers)
        guard let field = model.field(role) else { return }
        guard let value = table[name], field.allowed?.contains(where: { FieldCoercion.matches($0, .string(value)) }) ?? true else {
            let runnable = table.filter { _, value in field.allowed?.contains { FieldCoercion.matches($0, .string(value)) } ?? true }.keys.sorted()
            throw .invalidFields(["scheduler: \(sent.brief) cannot run on \(model.slug); it runs \(runnable.joined(separator: ", "))"])
        }
        fields.set(role, .string(value), from: "scheduler")
    }
}
