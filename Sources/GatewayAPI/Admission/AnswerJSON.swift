import Foundation
import GenerationCore

/// The JSON of every dialect's answers: sorted keys, so that an answer is the same bytes each time
/// (idempotent replays, golden tests); slashes unescaped, since base64 is full of them.
enum AnswerJSON {
    /// `value` as JSON, keys sorted; the placeholders of `splices` in it replaced by their texts.
    static func encode(_ value: some Encodable, splicing splices: SplicedJSON = SplicedJSON()) -> [UInt8] {
        splices.encode(value, sortedKeys: true)
    }
}
