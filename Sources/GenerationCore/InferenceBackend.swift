import ExtrasBase64

/// Something that turns a `GenerationRequest` into images: a pool of local workers, or an upstream
/// service. Dialects never know which.
public protocol InferenceBackend: Sendable {
    func generate(_ request: GenerationRequest) async throws(InferenceError) -> GenerationResult
}

/// What a backend produced.
public struct GenerationResult: Sendable, Equatable {
    /// One image per sample, in the format the backend produced them.
    public var images: [GeneratedImage]
    /// The seed actually used (the request's; reported back to clients).
    public var seed: UInt64
    /// Time spent generating, as the backend measured it.
    public var generationTime: Duration
    /// The backend a route chose, and what an upstream reported (for reconciliation): an upstream's
    /// name, or `local` for the team's own workers; nil when no route named one.
    public var upstream: UpstreamReport?

    public init(images: [GeneratedImage], seed: UInt64, generationTime: Duration, upstream: UpstreamReport? = nil) {
        self.images = images
        self.seed = seed
        self.generationTime = generationTime
        self.upstream = upstream
    }
}

/// Which backend served a request (an upstream, or `local`) and what an upstream said about money,
/// as it said it: upstream amounts are the upstream's own unit (Segmind: US dollars, to more
/// decimals than credits have), so they stay text. Only a plain decimal number of at most
/// `maxAmountLength` characters is kept: the text goes into the usage row for good, and a header
/// an upstream fills with tens of kilobytes (a fault, or one that means harm) would grow every
/// row and every usage report with it.
public struct UpstreamReport: Sendable, Equatable {
    /// The upstream's configured name, or `local`.
    public var name: String
    /// The upstream's `x-cost`: what it charged the team for this request.
    public private(set) var cost: String?
    /// The upstream's `x-remaining-credits`: the team's balance there after this request (below
    /// zero on an account that runs on credit).
    public private(set) var remainingCredits: String?

    /// Longer than any amount an upstream writes (`0.0042137`), short enough to keep in each row.
    public static let maxAmountLength = 32

    /// An amount that is not a plain decimal number is dropped (nil), never kept as it came.
    public init(name: String, cost: String? = nil, remainingCredits: String? = nil) {
        self.name = name
        self.cost = cost.flatMap { Self.plainDecimal($0, signed: false) }
        self.remainingCredits = remainingCredits.flatMap { Self.plainDecimal($0, signed: true) }
    }

    /// The text when it is digits with at most one `.` after the first of them (and, when
    /// `signed`, a leading `-`), at most `maxAmountLength` characters; otherwise nil.
    static func plainDecimal(_ text: String, signed: Bool) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.count <= maxAmountLength else { return nil }
        let number = signed && bytes.first == UInt8(ascii: "-") ? bytes.dropFirst() : bytes[...]
        guard let first = number.first, first != UInt8(ascii: "."),
            number.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: ".") }),
            number.count(where: { $0 == UInt8(ascii: ".") }) <= 1
        else { return nil }
        return text
    }
}

/// An image a backend delivered: its bytes, or the base64 text it came in (an upstream's answer),
/// which the member's answer then carries as it is, neither decoded nor encoded again.
public struct GeneratedImage: Sendable, Equatable {
    public var format: ImageFormat
    private let decoded: [UInt8]?
    private let checked: CheckedBase64?

    public init(bytes: [UInt8], format: ImageFormat) {
        decoded = bytes
        checked = nil
        self.format = format
    }

    /// An image kept as its checked base64 text; its bytes are decoded when someone asks for them.
    public init(base64: CheckedBase64, format: ImageFormat) {
        decoded = nil
        checked = base64
        self.format = format
    }

    public var bytes: [UInt8] { decoded ?? checked?.whole() ?? [] }

    /// The image in standard, padded base64.
    public var base64: ASCIIText { checked?.text ?? ASCIIText(unchecked: Base64.encodeToBytes(bytes: decoded ?? [])[...]) }

    /// Its format and size from its header.
    public var info: ImageInfo? { checked.map { $0.imageInfo() } ?? decoded.flatMap { ImageInspector.inspect($0) } }

    public static func == (lhs: GeneratedImage, rhs: GeneratedImage) -> Bool {
        lhs.format == rhs.format && lhs.bytes == rhs.bytes
    }
}

/// Why a backend could not generate. Each case has a stable code; `message` is safe to show a client.
public enum InferenceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Every worker or upstream is at capacity; retry after the given time.
    case busy(retryAfter: Duration)
    /// No answer within the deadline.
    case timedOut
    /// The upstream service refused the gateway (its key, its credits, its rate limit).
    case upstreamRefused(String, retryAfter: Duration? = nil)
    /// The backend will not run this valid request (a sampler or scheduler its model does not
    /// support); the message says why. Retrying does not help.
    case unsupported(String)
    /// Generation failed; the message says why in client-safe words.
    case failed(String)

    public var description: String {
        switch self {
        case .busy: "all backends are busy, retry later"
        case .timedOut: "generation did not finish in time"
        case .upstreamRefused(let message, _): message
        case .unsupported(let message), .failed(let message): message
        }
    }
}
