import GenerationCore
import Testing

@testable import GatewayAPI

@Suite("Field coercion")
struct FieldCoercionTests {
    static let model = ShippedCatalog.catalog["sdxl1.0-txt2img"]!

    static func validate(_ body: [String: JSONValue]) -> Result<ValidatedFields, ValidationFailure> {
        RequestValidator.validate(["prompt": .string("a cat")].merging(body) { $1 }, for: model)
    }

    @Test func numericStringsAreNumbers() throws {
        let fields = try Self.validate([
            "samples": .string("2"), "num_inference_steps": .string("30"), "guidance_scale": .string("7.5"),
            "seed": .string("98877465625"), "high_noise_fraction": .string("0.5"),
        ]).get()
        #expect(fields.integer(.samples) == 2)
        #expect(fields.integer(.steps) == 30)
        #expect(fields.number(.guidanceScale) == 7.5)
        #expect(fields.integer(.seed) == 98_877_465_625)
        #expect(fields.number(.highNoiseFraction) == 0.5)
    }

    @Test(arguments: [
        (JSONValue.bool(true), true), (.bool(false), false), (.string("true"), true), (.string("False"), false),
        (.string("yes"), true), (.string("no"), false), (.integer(1), true), (.integer(0), false),
    ])
    func booleanSpellings(value: JSONValue, expected: Bool) throws {
        #expect(try Self.validate(["refiner": value]).get().boolean(.refiner) == expected)
    }

    @Test func enumsMatchCaseInsensitivelyAndKeepTheCatalogSpelling() throws {
        let fields = try Self.validate(["scheduler": .string("euler A"), "style": .string("CINEMATIC")]).get()
        #expect(fields.string(.scheduler) == "Euler a")
        #expect(fields.string(.style) == "cinematic")
    }

    @Test func nullMeansTheDefault() throws {
        #expect(try Self.validate(["samples": .null]).get().integer(.samples) == 1)
    }

    @Test func unknownFieldsAreIgnored() throws {
        #expect(try Self.validate(["shape": .string("round"), "high_noise_frac": .number(0.3)]).get().number(.highNoiseFraction) == 0.8)
    }

    @Test func everyBadFieldIsReportedAtOnce() {
        let result = RequestValidator.validate(
            [
                "samples": .string("many"), "guidance_scale": .integer(99), "scheduler": .string("Nope"), "refiner": .string("maybe"),
                "seed": .integer(-5), "img_width": .string("1000"),
            ], for: Self.model)
        guard case .failure(let failure) = result else {
            Issue.record("expected a failure")
            return
        }
        #expect(
            failure.problems == [
                "prompt: is required",
                "samples: must be a whole number, got \"many\"",
                "scheduler: must be one of DDIM, DPM Multi, DPM Single, Euler a, Euler, Heun, DPM2 a Karras, DPM2 Karras, LMS, PNDM, DDPM, UniPC, dpmpp_2m, dpmpp_sde_ancestral, got \"Nope\"",
                "guidance_scale: must be between 1 and 25, got 99",
                "seed: must be -1 (random) or a whole number from 0, got -5",
                "refiner: must be true or false, got \"maybe\"",
                "img_width, img_height: 1000x1024 is not one of the sizes 1024x1024, 1152x896, 896x1152, 1216x832, 832x1216, 1344x768, 768x1344, 1536x640, 640x1536",
            ])
    }

    @Test(arguments: ["nan", "inf", "-infinity", "7,5", "", "1e400", "0x7", "0x1p3", "-0x7", "e", "+"])
    func notNumbers(text: String) {
        guard case .failure(let failure) = Self.validate(["guidance_scale": .string(text)]) else {
            Issue.record("\(text) was taken as a number")
            return
        }
        #expect(failure.problems.first?.hasPrefix("guidance_scale: must be a number") == true)
    }

    /// Swift's `Double` reads hexadecimal; a whole-number field must not take `0x19` as 25.
    @Test(arguments: ["0x19", "0X19", "0x1p4", "25e", "twenty"])
    func hexadecimalAndOtherSpellingsAreNotWholeNumbers(text: String) {
        guard case .failure(let failure) = Self.validate(["num_inference_steps": .string(text)]) else {
            Issue.record("\(text) was taken as a whole number")
            return
        }
        #expect(failure.problems.first?.hasPrefix("num_inference_steps: must be a whole number") == true)
    }

    @Test(arguments: [("25", 25), (" 25 ", 25), ("2.5e1", 25), ("+25", 25)])
    func decimalSpellingsOfWholeNumbersAreTaken(text: String, expected: Int64) throws {
        #expect(try Self.validate(["num_inference_steps": .string(text)]).get().integer(.steps) == expected)
    }

    @Test func anEmptyPromptIsRefused() {
        guard case .failure(let failure) = RequestValidator.validate(["prompt": .string("  ")], for: Self.model) else {
            Issue.record("an empty prompt was accepted")
            return
        }
        #expect(failure.problems == ["prompt: must not be empty"])
    }

    /// A prompt (any text field) holds at most `maxTextLength` characters, counted as Unicode
    /// scalars: an answer may repeat it once per image, and nothing else bounded it but the body.
    @Test func aPromptLongerThanTheLimitIsRefused() throws {
        let limit = FieldCoercion.maxTextLength
        #expect(throws: Never.self) { try Self.validate(["prompt": .string(String(repeating: "é", count: limit))]).get() }
        let longer = Self.validate(["prompt": .string(String(repeating: "\"", count: limit + 1)), "negative_prompt": .string("ok")])
        guard case .failure(let failure) = longer else {
            Issue.record("a prompt past the limit was accepted")
            return
        }
        #expect(failure.problems == ["prompt: must be at most \(limit) characters, got \(limit + 1)"])
        guard case .failure(let negative) = Self.validate(["negative_prompt": .string(String(repeating: "x", count: 2 * limit))]) else {
            Issue.record("a negative prompt past the limit was accepted")
            return
        }
        #expect(negative.problems == ["negative_prompt: must be at most \(limit) characters, got \(2 * limit)"])
    }
}
