import GenerationCore
import Testing

@testable import GatewayAPI

/// A1111's sampler and scheduler restated as a catalog model's fields.
@Suite("A1111 samplers")
struct A1111SamplerTests {
    static func restate(_ sampler: String, scheduler: String?, on slug: String) throws(GatewayError) -> RestatedFields {
        var fields = RestatedFields()
        let model = ShippedCatalog.catalog[slug]!
        try A1111Samplers.restate(sampler: .string(sampler), scheduler: scheduler.map(JSONValue.string), for: model, into: &fields)
        return fields
    }

    /// A sampler name's schedule suffix (" Karras") and a `scheduler` that names another are two
    /// asks: refused, where the suffix once won silently and the request ran with a schedule it did
    /// not name. The same schedule twice, or the automatic one, is one ask.
    @Test(arguments: ["sdxl1.0-txt2img", "sd3-med-img2img"])
    func aSchedulerThatDisagreesWithTheSamplerNamesSuffixIsRefused(slug: String) throws {
        #expect(
            throws: GatewayError.unavailableOption("scheduler: 'exponential' is not the schedule sampler_name names ('Karras'); send one of them")
        ) {
            _ = try Self.restate("DPM2 Karras", scheduler: "exponential", on: slug)
        }
        let agreed = try Self.restate("DPM2 Karras", scheduler: "karras", on: slug)
        let automatic = try Self.restate("DPM2 Karras", scheduler: "automatic", on: slug)
        let alone = try Self.restate("DPM2 Karras", scheduler: nil, on: slug)
        #expect(agreed.values == alone.values && automatic.values == alone.values && !alone.values.isEmpty)
    }
}
