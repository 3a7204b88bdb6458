// libFuzzer target for what a generation request's body goes through before a price is held:
// the JSON reader (or the ModelsLab form reader), the field coercion and validation of both
// dialects against the catalog in Config/models.yaml, the request builder and the price. Compiled
// by Fuzz/run into one module with those GatewayAPI sources (internal API is visible). Not part of
// the Swift package.
//
// Input: the first byte picks the mode, the rest is the body.
// - Bits 1-7 pick the model (or ModelsLab endpoint) and the kind of field the values are checked against.
// - Bit 0 set: the body is read as `application/x-www-form-urlencoded` (ModelsLab v3), else as JSON.
// - With bits 6 and 7 both set, `@@` and one byte k in the body stand for a long string (16 KiB and
//   more) of a kind chosen by k, so that the reader's path for long strings (lifted out before
//   `JSONDecoder` sees the rest) is reached within -max_len (only then: such inputs are slow to run).
//
// Traps (a crash to libFuzzer) when:
// - the JSON reader's answer differs from `JSONDecoder`'s (long ASCII text read as a String);
// - a field is coerced to a value its spec forbids (out of range, not a multiple, not allowed, wrong type);
// - a request that validates builds a generation request with a non-positive size, samples or steps,
//   or a negative price. Any trap on the way (overflow, bad conversion) is a crash too.

import Foundation
import GenerationCore

private let catalog: ModelCatalog = {
    do {
        return try ModelCatalog.load(file: "Config/models.yaml")
    } catch {
        fatalError("the fuzzer reads Config/models.yaml from the repository root: \(error)")
    }
}()

/// Every model and ModelsLab endpoint, in a fixed order.
private let specs: [ModelSpec] = catalog.models.keys.sorted().compactMap { catalog[$0] }
    + catalog.modelsLab.keys.sorted().compactMap { catalog.modelsLab[$0] }

/// Fields of every type, with and without bounds, beyond what the catalog holds today: coercion
/// must hold its promises for any spec the catalog loader accepts.
private let edgeFields: [FieldSpec] = {
    func spec(_ type: FieldType, min: Double? = nil, max: Double? = nil, multiple: Int64? = nil, allowed: [FieldValue]? = nil) -> FieldSpec {
        FieldSpec(name: "f", aliases: [], role: .steps, type: type, required: false, defaultValue: nil,
                  minimum: min, maximum: max, multiple: multiple, allowed: allowed)
    }
    return [
        spec(.integer), spec(.integer, min: -5, max: 1e19, multiple: 7), spec(.integer, multiple: 1),
        spec(.integer, allowed: [.integer(512), .integer(768)]), spec(.integer, min: 256, max: 1024, multiple: 8),
        spec(.number), spec(.number, min: 0, max: 1), spec(.number, min: -1e308, max: 1e308),
        spec(.seed), spec(.seed, min: 0, max: 10), spec(.boolean), spec(.string), spec(.image),
        spec(.enumeration, allowed: [.string("DDIM"), .string("Euler a"), .string("ß"), .string("İ")]),
    ]
}()

// MARK: Input

/// The contents of the long strings `@@k` stands for, each long enough for any k: ASCII (lifted as
/// the body's own bytes), non-ASCII (lifted and made a String), with an escape (not lifted), with a
/// control character (the fast path gives up), invalid UTF-8.
private let longStrings: [[UInt8]] = [Array("QUJD".utf8), Array("é".utf8), Array("ab\\n".utf8), [0x41, 0x01], [0xF0, 0x9F, 0x98]].map { unit in
    Array((0...(JSONObjectReader.liftedLength + 256) / unit.count).lazy.flatMap { _ in unit })
}

/// The body with each `@@k` expanded to 16 KiB and `k / 5` more bytes of a long string's contents.
private func expand(_ body: ArraySlice<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(body.count)
    var index = body.startIndex
    while index < body.endIndex {
        if body[index] == UInt8(ascii: "@"), index + 2 < body.endIndex, body[index + 1] == UInt8(ascii: "@") {
            let k = Int(body[index + 2])
            out += longStrings[k % longStrings.count].prefix(JSONObjectReader.liftedLength + k / longStrings.count)
            index += 3
        } else {
            out.append(body[index])
            index += 1
        }
    }
    return out
}

// MARK: Checks

private func fail(_ message: String, _ input: [UInt8]) -> Never {
    fatalError("\(message); input (\(input.count) bytes) = \"\(escaped(input))\"")
}

/// The value with long ASCII text read as a String, as `JSONDecoder` gives it.
private func plain(_ value: JSONValue) -> JSONValue {
    switch value {
    case .ascii(let text): .string(text.description)
    case .array(let values): .array(values.map(plain))
    case .object(let members): .object(members.mapValues(plain))
    default: value
    }
}

private func checkReader(_ body: [UInt8], _ input: [UInt8]) -> [String: JSONValue]? {
    let fast = try? JSONObjectReader.decode(body)
    // A shorter body goes to JSONDecoder as it is: there is nothing to compare.
    guard body.count >= JSONObjectReader.liftedLength else { return fast }
    let reference = try? JSONDecoder().decode([String: JSONValue].self, from: Data(body))
    if fast?.mapValues(plain) != reference {
        fail("the JSON reader answered \(describe(fast)) where JSONDecoder answered \(describe(reference))", input)
    }
    if let fast {
        for value in fast.values { checkASCII(value, input) }
    }
    return fast
}

/// `.ascii` text must be ASCII: it is forwarded as it is.
private func checkASCII(_ value: JSONValue, _ input: [UInt8]) {
    switch value {
    case .ascii(let text):
        if text.bytes.contains(where: { $0 >= 0x80 }) { fail("JSONValue.ascii holds a byte above 0x7F", input) }
    case .array(let values): values.forEach { checkASCII($0, input) }
    case .object(let members): members.values.forEach { checkASCII($0, input) }
    default: break
    }
}

/// What a coerced value must be, whatever was sent.
private func checkCoerced(_ value: FieldValue, _ field: FieldSpec, _ input: [UInt8]) {
    func reject(_ why: String) -> Never { fail("\(field.type) field coerced to \(value): \(why)", input) }
    switch (field.type, value) {
    case (.integer, .integer), (.seed, .integer), (.boolean, .boolean), (.string, .string), (.enumeration, .string),
         (.image, .string), (.image, .ascii):
        break
    case (.number, .number(let number)):
        if !number.isFinite { reject("not finite") }
    default:
        reject("wrong kind of value")
    }
    if case .integer(let number) = value, field.type == .seed, number < -1 { reject("a seed below -1") }
    if let number = value.asDouble, field.type != .seed {
        if let minimum = field.minimum, number < minimum { reject("below the minimum") }
        if let maximum = field.maximum, number > maximum { reject("above the maximum") }
    }
    if case .integer(let number) = value, let multiple = field.multiple, number % multiple != 0 { reject("not a multiple") }
    // An enum answers the catalog's own spelling; an integer matches by value.
    if let allowed = field.allowed, field.type == .enumeration, !allowed.contains(value) { reject("not one of the allowed values") }
    if let allowed = field.allowed, field.type == .integer, !allowed.contains(where: { FieldCoercion.matches($0, value) }) {
        reject("not one of the allowed values")
    }
}

/// Checks the body against one model and one kind of field, both picked by `choice`: all of them
/// for every input would make the fuzzer several times slower.
private func checkValidation(_ body: [String: JSONValue], choice: Int, _ input: [UInt8]) {
    do {
        let spec = specs[choice % specs.count]
        switch RequestValidator.validate(body, for: spec) {
        case .failure(let failure):
            if failure.problems.isEmpty || failure.problems.contains(where: \.isEmpty) { fail("\(spec.slug): a refusal without a reason", input) }
        case .success(let fields):
            for field in spec.fields {
                if let value = fields.values[field.role] { checkCoerced(value, field, input) }
            }
            // As the dialects do once a request is valid (an image-to-image request without its
            // image is sized from its fields or the default).
            let generation = GenerationRequestBuilder.build(fields, image: nil, randomSeed: 42)
            if generation.width < 1 || generation.height < 1 || generation.samples < 1 || generation.steps < 0 {
                fail("\(spec.slug): built \(generation.width)x\(generation.height), \(generation.samples) samples, \(generation.steps) steps", input)
            }
            let defaultSteps = spec.field(.steps)?.defaultValue?.asDouble.map { Int($0) } ?? generation.steps
            let cost = spec.price.cost(samples: generation.samples, steps: generation.steps, defaultSteps: defaultSteps)
            if cost < .zero { fail("\(spec.slug): a negative price \(cost)", input) }
        }
    }
    // Every value sent, against one kind of field.
    let field = edgeFields[choice % edgeFields.count]
    for value in body.values {
        do {
            switch FieldCoercion.coerce(value, to: field) {
            case .success(let coerced?): checkCoerced(coerced, field, input)
            case .success(nil): if value != .null { fail("\(field.type) field: \(value.brief) coerced to nothing", input) }
            case .failure(let problem): if problem.message.isEmpty { fail("\(field.type) field: a refusal without a reason", input) }
            }
        }
        _ = FieldCoercion.flag(value)
        _ = value.text
    }
}

// MARK: Entry

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = input.first else { return 0 }
    let body = mode & 0xC0 == 0xC0 ? expand(input.dropFirst()) : Array(input.dropFirst())
    let fields: [String: JSONValue]?
    if mode & 1 == 1 {
        fields = RequestBody.fields(body, contentType: "application/x-www-form-urlencoded; charset=utf-8")
    } else {
        fields = checkReader(body, input)
    }
    if let fields { checkValidation(fields, choice: Int(mode >> 1), input) }
    if printsEachInput { printLine(describe(fields)) }
    return 0
}

private func describe(_ object: [String: JSONValue]?) -> String {
    guard let object else { return "no object" }
    let members = object.keys.sorted().prefix(20).map { "\($0.prefix(40).debugDescription): \(object[$0]!.brief)" }
    return "{\(members.joined(separator: ", "))}"
}
