import ExtrasBase64
import Foundation

/// What to generate, free of any API dialect: the Segmind and ModelsLab front ends both produce it,
/// and every backend (local workers, upstream services) consumes it.
public struct GenerationRequest: Sendable, Equatable {
    /// The catalog slug the request was made for (`sdxl-img2img`); backends route on it.
    public var model: String
    public var task: GenerationTask
    public var family: ModelFamily
    public var prompt: String
    public var negativePrompt: String?
    /// The input image of an image-to-image request.
    public var image: InputImage?
    /// Output size; for image-to-image without size fields, the input's size rounded down to the
    /// family's multiple.
    public var width: Int
    public var height: Int
    public var samples: Int
    public var steps: Int
    public var guidanceScale: Double
    /// Image-to-image strength, or the refiner's strength for SDXL text-to-image.
    public var strength: Double?
    /// The seed to use; never -1 here: a random one has been picked already.
    public var seed: UInt64
    /// The scheduler name as the client gave it (matched case-insensitively against the catalog).
    public var scheduler: String?
    /// The SD3 sampler (ComfyUI vocabulary).
    public var sampler: String?
    /// Family-specific options: SDXL `style`, `refiner`, `high_noise_fraction`, `base_model`.
    public var options: GenerationOptions
    /// Who asked (a key id): backends that queue serve requesters in turn, so that one key's burst
    /// cannot starve the others.
    public var requester: String?
    /// How its client stops it while it runs (a job cancelled by its key); nil: it cannot be stopped.
    /// Backends that can stop between steps do; the others run to the end.
    public var stop: GenerationStop?

    public init(
        model: String, task: GenerationTask, family: ModelFamily, prompt: String, negativePrompt: String? = nil,
        image: InputImage? = nil, width: Int, height: Int, samples: Int = 1, steps: Int, guidanceScale: Double,
        strength: Double? = nil, seed: UInt64, scheduler: String? = nil, sampler: String? = nil,
        options: GenerationOptions = GenerationOptions()
    ) {
        self.model = model
        self.task = task
        self.family = family
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.image = image
        self.width = width
        self.height = height
        self.samples = samples
        self.steps = steps
        self.guidanceScale = guidanceScale
        self.strength = strength
        self.seed = seed
        self.scheduler = scheduler
        self.sampler = sampler
        self.options = options
    }
}

public enum GenerationTask: String, Sendable, Equatable, CaseIterable {
    case textToImage = "text-to-image"
    case imageToImage = "image-to-image"
}

/// The model family a request runs on; it decides which pipeline a local worker uses.
public enum ModelFamily: String, Sendable, Equatable, CaseIterable {
    case sd15 = "sd1.5"
    case sdxl
    case sd3
}

/// Options only some families understand.
public struct GenerationOptions: Sendable, Equatable {
    /// SDXL text-to-image style preset (`base`, `cinematic`, ...).
    public var style: String?
    /// SDXL text-to-image: run the refiner after the base model.
    public var refiner: Bool?
    /// SDXL text-to-image: the fraction of steps the base model runs before the refiner takes over.
    public var highNoiseFraction: Double?
    /// SDXL image-to-image: which configured base model (`juggernaut`, `sdxl`).
    public var baseModel: String?

    public init(style: String? = nil, refiner: Bool? = nil, highNoiseFraction: Double? = nil, baseModel: String? = nil) {
        self.style = style
        self.refiner = refiner
        self.highNoiseFraction = highNoiseFraction
        self.baseModel = baseModel
    }
}

/// An input image: its bytes as sent, or the standard base64 text they came in, and what
/// inspecting them found.
public struct InputImage: Sendable, Equatable {
    public var info: ImageInfo
    /// The bytes in standard base64, when the client sent them so: an upstream is sent this text
    /// as it came, rather than a megabyte encoded again.
    public let base64: ASCIIText?
    /// nil when only the text is kept: a proxied image is never decoded whole.
    private let decoded: [UInt8]?

    public init(bytes: [UInt8], info: ImageInfo, base64: ASCIIText? = nil) {
        decoded = bytes
        self.info = info
        self.base64 = base64
    }

    /// An image kept as its text, already checked to be standard, padded base64; its bytes are
    /// decoded when a backend asks for them.
    public init(base64: ASCIIText, info: ImageInfo) {
        decoded = nil
        self.info = info
        self.base64 = base64
    }

    public var bytes: [UInt8] {
        decoded ?? base64.flatMap { try? Base64.decode(bytes: $0.bytes) } ?? []
    }

    /// The image in standard, padded base64.
    public var base64Text: ASCIIText { base64 ?? ASCIIText(unchecked: Base64.encodeToBytes(bytes: bytes)[...]) }

    public static func == (lhs: InputImage, rhs: InputImage) -> Bool {
        lhs.info == rhs.info && lhs.bytes == rhs.bytes
    }
}
