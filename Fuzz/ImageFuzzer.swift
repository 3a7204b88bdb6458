// libFuzzer target for input images: the image inspector (format and size from the header) and the
// image loader's byte path (raw base64, URL-safe or unpadded base64 with line breaks, data URIs),
// without the network (URL inputs are refused: no fetcher). Compiled by Fuzz/run into one module
// with the loader's sources. Not part of the Swift package.
//
// Input: the first byte picks the mode, the rest is the payload.
// - Mode & 3 == 0: the payload is the image field's text as a client sent it.
// - Mode & 3 == 1, 2, 3: the payload is an image's bytes, sent as standard padded base64, as
//   URL-safe unpadded base64 with line breaks, or as a data URI (media type from bits 2-3).
//   With bits 5 and 6 both set, `FILL` and one byte k in the bytes stand for k KiB of zeros, so
//   that images past the loader's heads (3 and 48 KiB: long JPEG metadata) are reached within -max_len
//   (only then: such inputs are some forty times slower to run).
// - Bit 4 picks the largest size accepted (2048 or 1024 on a side).
//
// Traps when:
// - the inspector answers differently for the same bytes held as an array, a slice, Data or a raw
//   buffer, or gives a dimension below 1;
// - for encoded bytes, the loader's answer is not the inspector's on the whole image (accepted with
//   the same size exactly when the inspector reads one within the limits), or the image the
//   backends would get is not the bytes that were sent;
// - the loader accepts an image beyond its limits.

import Dispatch
import ExtrasBase64
import Foundation
import GenerationCore

private let loader = ImageLoader(fetcher: nil)
private let mediaTypes = ["image/png", "IMAGE/JPEG; charset=binary", "image/webp;x=y", "text/plain"]

/// The bytes with each `FILL` and k expanded to k KiB of zeros (until the bytes pass 64 KiB).
private func expand(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
    let marker = Array("FILL".utf8)
    var out: [UInt8] = []
    var index = bytes.startIndex
    while index < bytes.endIndex {
        // Past the loader's longer head (48 KiB), but not much further: long inputs are slow to fuzz.
        if index + marker.count < bytes.endIndex, out.count < 64 << 10, bytes[index..<index + marker.count].elementsEqual(marker) {
            out += repeatElement(0, count: Int(bytes[index + marker.count]) << 10)
            index += marker.count + 1
        } else {
            out.append(bytes[index])
            index += 1
        }
    }
    return out
}

/// The field's value as the request reader would give it: long ASCII text stays bytes.
private func fieldValue(_ text: [UInt8]) -> FieldValue {
    text.allSatisfy({ $0 < 0x80 }) ? .ascii(ASCIIText(unchecked: text[...])) : .string(String(decoding: text, as: UTF8.self))
}

/// The loader is async (a URL is fetched); with no fetcher it never waits, but it still needs a task.
private final class Outcome: @unchecked Sendable {
    var result: Result<InputImage, ImageProblem>?
}

/// Runs the loader in a task started on this thread: it never suspends, so it is done when the task
/// returns, without a hop to another thread for every input (which made the fuzzer several times
/// slower on a busy machine). The semaphore covers a loader that would suspend after all.
private func load(_ value: FieldValue, maxSize: ImageSize) -> Result<InputImage, ImageProblem> {
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    Task.immediate {
        do throws(ImageProblem) {
            outcome.result = .success(try await loader.load(value, maxSize: maxSize))
        } catch {
            outcome.result = .failure(error)
        }
        done.signal()
    }
    done.wait()
    return outcome.result!
}

private func inspectEveryWay(_ bytes: [UInt8], _ input: [UInt8]) -> ImageInfo? {
    let info = ImageInspector.inspect(bytes)
    // A slice that does not start at index 0, as a body's bytes are.
    let padded = [0xFF, 0xD8] + bytes
    let others = [
        ImageInspector.inspect(padded[2...]),
        ImageInspector.inspect(Data(bytes)),
        bytes.withUnsafeBytes { ImageInspector.inspect($0) },
    ]
    if others.contains(where: { $0 != info }) { fail("the inspector's answers differ by collection: \(String(describing: info)), \(others)", input) }
    if let info, info.width < 1 || info.height < 1 { fail("the inspector read \(info.width)x\(info.height)", input) }
    return info
}

private func fail(_ message: String, _ input: [UInt8]) -> Never {
    fatalError("\(message); input (\(input.count) bytes) = \"\(escaped(input))\"")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = input.first else { return 0 }
    let payload = input.dropFirst()
    let maxSize = mode & 0x10 == 0 ? ImageSize(width: 2048, height: 2048) : ImageSize(width: 1024, height: 1024)
    let limits = loader.limits

    if mode & 3 == 0 {
        _ = inspectEveryWay(Array(payload), input)
        let result = load(fieldValue(Array(payload)), maxSize: maxSize)
        if case .success(let image) = result {
            let info = image.info
            if info.width > maxSize.width || info.height > maxSize.height || info.width * info.height > limits.maxPixels {
                fail("accepted a \(info.width)x\(info.height) image", input)
            }
            if ImageInspector.inspect(image.bytes) != info { fail("the accepted image's bytes do not read as \(info)", input) }
        }
        if printsEachInput { printLine("\(result)".prefix(200).description) }
        return 0
    }

    let image = mode & 0x60 == 0x60 ? expand(payload) : Array(payload)
    let info = inspectEveryWay(image, input)
    var text: [UInt8]
    switch mode & 3 {
    case 1:
        text = Base64.encodeToBytes(bytes: image)
    case 2:
        let encoded = Base64.encodeToBytes(bytes: image, options: [.base64UrlAlphabet, .omitPaddingCharacter])
        text = []
        for start in stride(from: 0, to: encoded.count, by: 76) {
            if start > 0 { text += [0x0D, 0x0A] }
            text += encoded[start..<min(start + 76, encoded.count)]
        }
    default:
        text = Array("data:\(mediaTypes[Int(mode >> 2) & 3]);base64,".utf8) + Base64.encodeToBytes(bytes: image)
    }
    // Base64 and the media types are ASCII: the reader keeps such text as its bytes, with the run
    // of base64 characters it saw at its start.
    let run = text.withUnsafeBufferPointer { Base64Alphabet.leadingRun($0) }
    let result = load(.ascii(ASCIIText(unchecked: text[...], base64Run: run)), maxSize: maxSize)
    let acceptable = info.map { $0.width <= maxSize.width && $0.height <= maxSize.height && $0.width * $0.height <= limits.maxPixels }
    let refusedMediaType = mode & 3 == 3 && (mode >> 2) & 3 == 3
    switch result {
    case .success(let loaded):
        if refusedMediaType { fail("a data URI of text/plain was accepted", input) }
        if loaded.info != info { fail("the loader read \(loaded.info) where the inspector reads \(String(describing: info))", input) }
        if acceptable != true { fail("accepted a \(loaded.info.width)x\(loaded.info.height) image", input) }
        if loaded.bytes != image { fail("the image a backend gets is not the one sent (\(loaded.bytes.count) bytes for \(image.count))", input) }
        if let base64 = loaded.base64, base64.bytes.contains(where: { $0 >= 0x80 }) { fail("the forwarded base64 is not ASCII", input) }
    case .failure(let problem):
        if problem.reason.isEmpty { fail("a refusal without a reason", input) }
        if acceptable == true && !refusedMediaType && !image.isEmpty {
            fail("refused a readable \(info!) image: \(problem.reason)", input)
        }
    }
    if printsEachInput { printLine("\(String(describing: info)) -> \(result)".prefix(200).description) }
    return 0
}
