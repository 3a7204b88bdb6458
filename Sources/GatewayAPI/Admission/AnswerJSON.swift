import Foundation

/// The JSON of every dialect's answers: sorted keys, so that an answer is the same bytes each time
/// (idempotent replays, golden tests); slashes unescaped, since base64 is full of them.
enum AnswerJSON {
    static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8))
    }
}
