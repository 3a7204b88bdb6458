public import GenerationCore

/// One request field of a model, as the catalog describes it.
public struct FieldSpec: Sendable {
    /// The wire name (`num_inference_steps`).
    public let name: String
    /// Other wire names accepted for the same field.
    public let aliases: [String]
    /// What the field means to the gateway.
    public let role: FieldRole
    public let type: FieldType
    public let required: Bool
    public let defaultValue: FieldValue?
    public let minimum: Double?
    public let maximum: Double?
    /// For an integer field: values must be a multiple of it (image sizes on the latent grid).
    public let multiple: Int64?
    /// Allowed values: strings for enums (matched case-insensitively), integers for integer fields.
    public let allowed: [FieldValue]?
}

/// What a field means, whatever a model calls it on the wire.
public enum FieldRole: String, Sendable, CaseIterable {
    case prompt
    case negativePrompt = "negative_prompt"
    case image
    case width
    case height
    case samples
    case steps
    case guidanceScale = "guidance_scale"
    case strength
    case seed
    case scheduler
    case sampler
    case style
    case refiner
    case highNoiseFraction = "high_noise_fraction"
    case baseModel = "base_model"
    case base64
}

public enum FieldType: String, Sendable, CaseIterable {
    case string
    case integer
    case number
    case boolean
    /// A 64-bit seed; -1 means "pick one".
    case seed
    /// An image as raw base64, a data URI or an http(s) URL.
    case image
    case enumeration = "enum"
}

/// A field's value once coerced to its type.
public enum FieldValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    /// An image field's long text, as the request's bytes (`JSONValue.ascii`).
    case ascii(ASCIIText)
    case integer(Int64)
    case number(Double)
    case boolean(Bool)

    public var description: String {
        switch self {
        case .string(let text): text
        case .ascii(let text): text.description
        case .integer(let value): String(value)
        case .number(let value): value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .boolean(let value): String(value)
        }
    }

    var asDouble: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .number(let value): value
        default: nil
        }
    }
}
