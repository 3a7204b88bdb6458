/// The image formats sdgate accepts as input and produces as output.
public enum ImageFormat: String, Sendable, Equatable, CaseIterable {
    case jpeg
    case png
    case webp
    case gif

    public var mediaType: String { "image/\(rawValue)" }
}

/// What inspecting an image's header found, before any pixel is decoded.
public struct ImageInfo: Sendable, Equatable {
    public var format: ImageFormat
    public var width: Int
    public var height: Int

    public init(format: ImageFormat, width: Int, height: Int) {
        self.format = format
        self.width = width
        self.height = height
    }
}
