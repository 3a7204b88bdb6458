import GenerationCore
import Testing

@testable import GatewayAPI

@Suite("Model catalog")
struct CatalogTests {
    @Test func theShippedCatalogHasTheFourModels() throws {
        let catalog = ShippedCatalog.catalog
        #expect(Set(catalog.models.keys) == ["sd1.5-img2img", "sdxl-img2img", "sdxl1.0-txt2img", "sd3-med-img2img"])
        let sd3 = try #require(catalog["sd3-med-img2img"])
        #expect(sd3.family == .sd3)
        #expect(sd3.task == .imageToImage)
        #expect(sd3.input.multiple == 64)
        #expect(sd3.field(.sampler)?.allowed?.count == 27)
        let txt2img = try #require(catalog["sdxl1.0-txt2img"])
        #expect(txt2img.sizes?.count == 9)
        #expect(txt2img.field(.style)?.allowed?.count == 18)
        #expect(catalog["sd1.5-img2img"]?.price.perImage == Credits(decimal: "0.004"))
    }

    @Test func theShippedCatalogHasTheTwoModelsLabEndpoints() throws {
        let img2img = try #require(ShippedCatalog.catalog.modelsLab["img2img"])
        #expect(img2img.slug == "sd1.5-img2img" && img2img.family == .sd15 && img2img.task == .imageToImage)
        #expect(img2img.field(.image)?.name == "init_image")
        #expect(img2img.field(.width)?.multiple == 8)
        let text2img = try #require(ShippedCatalog.catalog.modelsLab["text2img"])
        #expect(text2img.slug == "sdxl1.0-txt2img" && text2img.price.perImage == Credits(decimal: "0.008"))
    }

    @Test(arguments: [
        (
            "modelslab:\n  img2img:\n    runs_as: nothing\n    fields: {}",
            "models.yaml:15: modelslab: img2img: runs_as: expected one of the models above"
        ),
        (
            "modelslab:\n  text2img:\n    runs_as: m1\n    fields: {}",
            "models.yaml:15: modelslab: text2img: runs_as: m1 is image-to-image, but text2img needs text-to-image"
        ),
        ("modelslab:\n  upscale: {}", "models.yaml:14: modelslab: unknown key 'upscale' (expected one of img2img, text2img, v6)"),
    ])
    func aBrokenModelsLabEndpointIsNamed(section: String, expected: String) {
        #expect(Self.problem(Self.yaml() + "\n" + section) == expected)
    }

    /// A step costs the same through ModelsLab v3 as through the model its endpoint runs as: v3's
    /// own default of 31 steps divided the price, and 25 steps of `sdxl1.0-txt2img` cost 0.006452
    /// through v3 against 0.008 through Segmind.
    @Test(arguments: ["text2img", "img2img"])
    func aStepCostsTheSameThroughModelsLabV3AsThroughTheModelItRunsAs(endpoint: String) throws {
        let catalog = ShippedCatalog.catalog
        let v3 = try #require(catalog.modelsLab[endpoint])
        let base = try #require(catalog[v3.slug])
        for steps in [1, 20, 25, 31, 51] {
            #expect(RequestPrice(v3, steps: steps).cost(images: 2) == RequestPrice(base, steps: steps).cost(images: 2), "\(steps) steps")
        }
        #expect(v3.pricedSteps == base.field(.steps)?.defaultValue?.asDouble.flatMap { Int(exactly: $0) })
    }

    @Test func theShippedCatalogMapsOpenAIsAndA1111sNames() throws {
        let catalog = ShippedCatalog.catalog
        let openAI = catalog.openAI.models
        #expect(try openAI.model(nil, for: .textToImage, in: catalog).get().slug == "sdxl1.0-txt2img", "dall-e-2 by default")
        #expect(try openAI.model("gpt-image-1", for: .imageToImage, in: catalog).get().slug == "sdxl-img2img")
        #expect(try openAI.model("sd3-med-img2img", for: .imageToImage, in: catalog).get().slug == "sd3-med-img2img", "a slug is a name")
        #expect(throws: ModelNames.Refusal.otherTask(.textToImage)) { try openAI.model("dall-e-3", for: .imageToImage, in: catalog).get() }
        #expect(throws: ModelNames.Refusal.otherTask(.imageToImage)) { try openAI.model("sd1.5-img2img", for: .textToImage, in: catalog).get() }
        #expect(throws: ModelNames.Refusal.unknown) { try openAI.model("dall-e-9", for: .textToImage, in: catalog).get() }
        #expect(catalog.openAI.sizes["1792x1024"] == ImageSize(width: 1344, height: 768))
        #expect(catalog.a1111.defaultName == "sdxl")
        #expect(try catalog.a1111.model("sd1.5", for: .imageToImage, in: catalog).get().slug == "sd1.5-img2img")
        #expect(try catalog.modelsLabV6.model(nil, for: .textToImage, in: catalog).get().slug == "sdxl1.0-txt2img")
        #expect(try catalog.modelsLabV6.model("sd3-medium", for: .imageToImage, in: catalog).get().slug == "sd3-med-img2img")
    }

    @Test(arguments: [
        (
            "openai:\n  default_model: m1\n  variation_prompt: x\n  models:\n    big: { text-to-image: m1 }",
            "models.yaml:17: openai: models: big: text-to-image: expected a text-to-image model above, got 'm1'"
        ),
        (
            "openai:\n  default_model: nothing\n  variation_prompt: x",
            "models.yaml:14: openai: default_model: expected one of the names in models or a model above, got 'nothing'"
        ),
        ("openai:\n  default_model: m1", "models.yaml:14: openai: variation_prompt: the prompt variations run with is required"),
        (
            "openai:\n  default_model: m1\n  variation_prompt: x\n  sizes: { big: 1024x1024 }",
            "models.yaml:16: openai: sizes: expected a size mapped to a size, such as 1792x1024: 1344x768"
        ),
        (
            "a1111:\n  default_checkpoint: m1\n  checkpoints:\n    c: { img2img: m1 }",
            "models.yaml:16: a1111: checkpoints: c: unknown key 'img2img' (expected one of image-to-image, text-to-image)"
        ),
    ])
    func aBrokenDialectSectionIsNamed(section: String, expected: String) {
        #expect(Self.problem(Self.yaml() + "\n" + section)?.hasPrefix(expected) == true, "\(Self.problem(Self.yaml() + "\n" + section) ?? "loaded")")
    }

    /// A minimal valid model, to break one piece at a time.
    static func yaml(_ model: String = "", fields: String = "") -> String {
        """
        models:
          m1:
            task: image-to-image
            family: sdxl
            price: { credits_per_image: 0.01 }
        \(model)
            fields:
              prompt: { type: string, required: true }
              image: { type: image, required: true }
              steps: { type: integer, default: 20, min: 1, max: 50 }
              guidance_scale: { type: number, default: 7 }
        \(fields)
        """
    }

    static func problem(_ yaml: String) -> String? {
        do {
            _ = try ModelCatalog.load(yaml: yaml, fileName: "models.yaml")
            return nil
        } catch {
            return error.description
        }
    }

    @Test func theMinimalModelLoads() throws {
        let catalog = try ModelCatalog.load(yaml: Self.yaml(), fileName: "models.yaml")
        #expect(catalog["m1"]?.fields.map(\.name) == ["prompt", "image", "steps", "guidance_scale"])
    }

    @Test(arguments: [
        (
            yaml(fields: "      seed: { type: float }"),
            "models.yaml:12: m1: seed: type: 'float' is not one of string, integer, number, boolean, seed, image, enum"
        ),
        (yaml(fields: "      steps2: { role: steps, type: integer, default: 1 }"), "models.yaml:8: m1: role 'steps' is given to more than one field"),
        (
            yaml(fields: "      cfg: { type: number }"),
            "models.yaml:12: m1: cfg: 'cfg' is not a role: give it one of prompt, negative_prompt, image, width, height, samples, steps, guidance_scale, strength, seed, scheduler, sampler, style, refiner, high_noise_fraction, base_model, base64"
        ),
        (yaml(fields: "      samples: { type: integer, default: 9, min: 1, max: 4 }"), "models.yaml:12: m1: samples: default 9 is above max 4.0"),
        (yaml(fields: "      samples: { type: integer, min: 4, max: 1 }"), "models.yaml:12: m1: samples: min 4.0 is above max 1.0"),
        (
            yaml(fields: "      scheduler: { type: enum, default: Foo, values: [DDIM, Euler] }"),
            "models.yaml:12: m1: scheduler: default 'Foo' is not one of its values"
        ),
        (yaml(fields: "      scheduler: { type: enum }"), "models.yaml:12: m1: scheduler: an enum needs a non-empty list of values"),
        (
            yaml(fields: "      samples: { type: integer, defualt: 1 }"),
            "models.yaml:12: m1: samples: unknown key 'defualt' (expected one of aliases, default, max, min, multiple, required, role, type, values)"
        ),
        (yaml("    sizes: [1024x1024, big]"), "models.yaml:6: m1: sizes: 'big' is not a size such as 1024x768"),
        (yaml("    colour: blue"), "models.yaml:6: m1: unknown key 'colour' (expected one of family, fields, input, price, sizes, task)"),
        (yaml().replacingOccurrences(of: "family: sdxl", with: "family: sd2"), "models.yaml:4: m1: family: 'sd2' is not one of sd1.5, sdxl, sd3"),
        (
            yaml().replacingOccurrences(of: "credits_per_image: 0.01", with: "credits_per_image: 0.0000001"),
            "models.yaml:5: m1: price: credits_per_image must be a positive amount with at most six decimals"
        ),
        (
            yaml().replacingOccurrences(of: "      image: { type: image, required: true }\n", with: ""),
            "models.yaml:8: m1: an image-to-image model needs a field with the role 'image'"
        ),
    ])
    func aBrokenCatalogNamesTheFileLineModelAndField(yaml: String, expected: String) {
        #expect(Self.problem(yaml) == expected)
    }

    @Test func everyProblemIsReported() throws {
        let broken = Self.yaml(fields: "      samples: { type: integr }\n      seed: { type: seed, default: x }")
        let problem = try #require(Self.problem(broken))
        #expect(problem.split(separator: "\n").count == 2)
    }

    @Test func addingAModelIsACatalogChangeOnly() throws {
        let yaml =
            Self.yaml() + """

                  m2:
                    task: text-to-image
                    family: sd1.5
                    price: { credits_per_image: 0.001 }
                    fields:
                      text: { role: prompt, type: string, required: true, aliases: [caption] }
                      steps: { type: integer, default: 10 }
                      cfg: { role: guidance_scale, type: number, default: 5 }
                      w: { role: width, type: integer, default: 512 }
                      h: { role: height, type: integer, default: 512 }
                """
        let catalog = try ModelCatalog.load(yaml: yaml, fileName: "models.yaml")
        let model = try #require(catalog["m2"])
        let fields = try RequestValidator.validate(["caption": .string("a fox")], for: model).get()
        let request = GenerationRequestBuilder.build(fields, image: nil, randomSeed: 7)
        #expect(request.prompt == "a fox")
        #expect(request.width == 512)
        #expect(request.guidanceScale == 5)
    }
}

@Suite("Prices")
struct PriceTests {
    @Test func priceScalesWithSamplesAndStepsInWholeMicroCredits() throws {
        let rule = PriceRule(perImage: try #require(Credits(decimal: "0.004")))
        #expect(rule.cost(samples: 1, steps: 20, defaultSteps: 20).description == "0.004")
        #expect(rule.cost(samples: 3, steps: 40, defaultSteps: 20).description == "0.024")
        // 0.004 × 21 / 20 = 0.0042; 0.004 × 1 / 3 rounds up to the next micro-credit.
        #expect(rule.cost(samples: 1, steps: 21, defaultSteps: 20).microCredits == 4200)
        #expect(rule.cost(samples: 1, steps: 1, defaultSteps: 3).microCredits == 1334)
    }

    @Test func creditsParseAndPrintExactly() {
        #expect(Credits(decimal: "0.004")?.microCredits == 4000)
        #expect(Credits(decimal: "12")?.microCredits == 12_000_000)
        #expect(Credits(decimal: "-1.5")?.description == "-1.5")
        #expect(Credits(decimal: "0.1234567") == nil)
        #expect(Credits(decimal: "1e3") == nil)
        #expect(Credits(decimal: "") == nil)
        #expect(Credits(microCredits: 1).description == "0.000001")
    }
}
