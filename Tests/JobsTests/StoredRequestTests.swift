import GenerationCore
import TestSupport
import Testing

@testable import Jobs

/// A queued job's request is read back with its image, which is stored apart from its payload.
@Suite("Stored requests")
struct StoredRequestTests {
    static func request(_ task: GenerationTask, image: [UInt8]?) -> GenerationRequest {
        GenerationRequest(
            model: task == .imageToImage ? "sd1.5-img2img" : "sd1.5-txt2img", task: task, family: .sd15, prompt: "a lighthouse",
            image: image.flatMap { bytes in ImageInspector.inspect(bytes).map { InputImage(bytes: bytes, info: $0) } }, width: 64,
            height: 64, steps: 2, guidanceScale: 5, seed: 1)
    }

    /// Without its image an image-to-image request is none: sent on, it would run as text-to-image
    /// and be charged (a gateway of an older version, which reads images from payloads only,
    /// claiming a job whose image is stored apart).
    @Test func anImageToImageRequestIsReadBackWithItsImageOrNotAtAll() throws {
        let image = TestImages.png(width: 64, height: 64)
        let payload = GenerationJobPayload(request: Self.request(.imageToImage, image: image), files: [], base64: false, meta: [:])
        let (rest, input) = payload.encodedApart()
        let stored = try #require(GenerationJobPayload.decode(rest)).request

        let withImage = try #require(stored.generationRequest(input: input))
        #expect(withImage.task == .imageToImage && withImage.image?.info.width == 64)
        #expect(stored.generationRequest(input: nil) == nil, "its image missing")
        #expect(stored.generationRequest(input: Array("not an image".utf8)) == nil, "its image unreadable")

        let text = GenerationJobPayload(request: Self.request(.textToImage, image: nil), files: [], base64: false, meta: [:])
        let textRequest = try #require(GenerationJobPayload.decode(text.encodedApart().payload)).request.generationRequest(input: nil)
        #expect(textRequest?.task == .textToImage)
    }
}
