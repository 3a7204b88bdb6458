// libFuzzer target for the dialects whose fields are not the catalog's: an AUTOMATIC1111 txt2img or
// img2img body, or a ModelsLab v6 one, is read, its model named (a checkpoint, a `model_id`), its
// fields restated in that model's and validated against the catalog in Config/models.yaml. Compiled
// by Fuzz/run into one module with those GatewayAPI sources. Not part of the Swift package.
//
// Input: the first byte picks the mode, the rest is the JSON body.
// - Bit 0: text-to-image (0) or image-to-image (1). Bit 1: A1111 (0) or ModelsLab v6 (1).
//
// Traps (a crash to libFuzzer) when:
// - a refusal has no words, or names no field where it is about fields;
// - the restated body carries a name that is not one of the model's fields;
// - a restated request that validates has a value outside its field's range, multiple or values,
//   or builds a generation with a non-positive size or sample count, or more samples than the
//   model allows. Any trap on the way (overflow, bad conversion) is a crash too.

import Foundation
import GenerationCore

private let catalog: ModelCatalog = {
    do {
        return try ModelCatalog.load(file: "Config/models.yaml")
    } catch {
        fatalError("the fuzzer reads Config/models.yaml from the repository root: \(error)")
    }
}()

private func fail(_ message: String, _ input: [UInt8]) -> Never {
    fatalError("\(message); input (\(input.count) bytes) = \"\(escaped(input))\"")
}

private func restate(_ body: [String: JSONValue], mode: UInt8) throws(GatewayError) -> (ModelSpec, RestatedFields) {
    let task: GenerationTask = mode & 1 == 0 ? .textToImage : .imageToImage
    if mode & 2 == 0 {
        let (name, model) = try A1111Request.model(try A1111Request.checkpoint(in: body, chosen: nil), for: task, catalog: catalog)
        return (model, try A1111Request(body, task: task, checkpoint: name, model: model).fields)
    }
    let model = try ModelsLabV6Request.model(of: body, task: task, catalog: catalog)
    return (model, try ModelsLabV6Request.fields(body, task: task, model: model))
}

private func checkRefusal(_ error: GatewayError, _ input: [UInt8]) {
    if error.message.isEmpty { fail("a refusal without words: \(error)", input) }
    if case .invalidFields(let problems) = error, problems.isEmpty || problems.contains(where: { !$0.contains(": ") }) {
        fail("a field refusal that names no field: \(problems)", input)
    }
}

private func checkValid(_ fields: ValidatedFields, _ model: ModelSpec, _ input: [UInt8]) {
    for field in model.fields {
        guard let value = fields.values[field.role] else { continue }
        if let number = value.asDouble, field.type != .seed {
            if let minimum = field.minimum, number < minimum { fail("\(model.slug): \(field.name) \(value) below its minimum", input) }
            if let maximum = field.maximum, number > maximum { fail("\(model.slug): \(field.name) \(value) above its maximum", input) }
        }
        if case .integer(let number) = value, let multiple = field.multiple, number % multiple != 0 {
            fail("\(model.slug): \(field.name) \(value) not a multiple of \(multiple)", input)
        }
        if let allowed = field.allowed, !allowed.contains(where: { FieldCoercion.matches($0, value) }) {
            fail("\(model.slug): \(field.name) \(value) not one of its values", input)
        }
    }
    let generation = GenerationRequestBuilder.build(fields, image: nil, randomSeed: 42)
    let most = model.field(.samples)?.maximum.map { Int($0) } ?? 1
    if generation.width < 1 || generation.height < 1 || generation.samples < 1 || generation.samples > most {
        fail("\(model.slug): built \(generation.width)x\(generation.height) with \(generation.samples) samples", input)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = input.first, let body = try? JSONObjectReader.decode(Array(input.dropFirst())) else { return 0 }
    let model: ModelSpec
    let fields: RestatedFields
    do throws(GatewayError) {
        (model, fields) = try restate(body, mode: mode)
    } catch {
        checkRefusal(error, input)
        return 0
    }
    let restated = fields.body(for: model)
    if let stray = restated.keys.first(where: { name in !model.fields.contains { $0.name == name } }) {
        fail("\(model.slug): restated into '\(stray)', which is not one of its fields", input)
    }
    switch RequestValidator.validate(restated, for: model) {
    case .failure(let failure): checkRefusal(fields.renamed(.invalidFields(failure.problems), for: model), input)
    case .success(let valid): checkValid(valid, model, input)
    }
    if printsEachInput { printLine("\(model.slug): \(restated.keys.sorted())") }
    return 0
}
