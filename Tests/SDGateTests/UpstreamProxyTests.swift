import Foundation
import TestSupport
import Testing

/// The upstream proxy end to end: the official `segmind` SDK → `sdgate serve` → a fake Segmind or
/// ModelsLab upstream on 127.0.0.1, each told to behave or to fail in one of the ways real services
/// fail. The member uses the gateway's key, the upstream sees only the team's.
@Suite("Upstream proxy end to end", .serialized)
struct UpstreamProxyTests {
    static let image = "PNG 640x480"

    @Test func theSDKGetsItsImagesFromAFakeSegmindThroughTheGateway() async throws {
        let upstream = try FakeSegmindUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl-img2img": ["segmind"]])
        let member = try await gateway.createKey(name: "alice", credits: "1")

        let answer = try await gateway.sdk(
            member.secret, "sdxl-img2img",
            ["image": Self.image, "prompt": "a fox", "samples": 2, "seed": 98_877_465_625, "base64": true])
        #expect(answer["status"] as? Int == 200, "\(answer)")
        let headers = answer["headers"] as? [String: String] ?? [:]
        #expect(headers["x-cost"] == "0.04", "the gateway's price for two samples, not the upstream's")
        #expect(headers["x-seed-value"] == "98877465625")
        #expect(headers["x-remaining-credits"] == "0.96")
        #expect((answer["images"] as? [[String: Any]])?.map { $0["format"] as? String } == ["png", "png"])

        // The upstream saw the team's key and Segmind's own fields, never the member's key.
        let sent = try #require(upstream.received.first)
        #expect(upstream.received.count == 1)
        #expect(sent.path == "/v1/sdxl-img2img")
        #expect(sent.headers["x-api-key"] == upstream.key)
        #expect(sent.json["prompt"] as? String == "a fox" && sent.json["samples"] as? Int == 2)
        #expect(sent.json["seed"] as? Int == 98_877_465_625 && sent.json["base64"] as? Bool == true)
        #expect(sent.json["image"] as? String == Data(TestImages.png(width: 640, height: 480)).base64EncodedString())
        #expect(!String(decoding: sent.body, as: UTF8.self).contains(member.secret) && !sent.headers.description.contains(member.secret))

        // Metered: the member's charge beside the upstream's cost and the team's balance there.
        let usage = try await gateway.usage()
        #expect(usage.count == 1)
        #expect(usage.first?["cost"] as? String == "0.04")
        #expect(usage.first?["backend"] as? String == "segmind")
        #expect(usage.first?["upstream_cost"] as? String == upstream.cost)
        #expect(usage.first?["upstream_remaining_credits"] as? String == upstream.remainingCredits)
        let text = try await gateway.command(["usage"])
        #expect(text.output.contains("0.04  (segmind charged \(upstream.cost))"), "\(text.output)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        #expect(!gateway.log.contains(upstream.key) && !gateway.log.contains(member.secret), "no key reaches the log")
        await upstream.shutdown()
    }

    /// A Segmind request served by a ModelsLab upstream: the v3 body with the key in it, a
    /// `processing` answer, polling on fetch, the images downloaded from `output`.
    @Test func aSegmindRequestIsServedByAFakeModelsLabThroughProcessingAndFetch() async throws {
        let upstream = try FakeModelsLabUpstream(pollsBeforeSuccess: 2)
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "modelslab", dialect: "modelslab", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sd1.5-img2img": ["modelslab"]])
        let member = try await gateway.createKey(name: "bob", credits: "1")

        let answer = try await gateway.sdk(
            member.secret, "sd1.5-img2img",
            [
                "image": Self.image, "prompt": "a lighthouse", "img_width": 768, "img_height": 512,
                "seed": 1234, "base64": false,
            ])
        #expect(answer["status"] as? Int == 200, "\(answer)")
        #expect((answer["headers"] as? [String: String])?["x-seed-value"] == "1234")
        #expect((answer["headers"] as? [String: String])?["content-type"] == "image/png")
        #expect((answer["images"] as? [[String: Any]])?.first?["width"] as? Int == 768)

        let paths = upstream.received.map(\.path)
        #expect(
            paths == [
                "/api/v3/img2img", "/api/v3/fetch/10684517", "/api/v3/fetch/10684517", "/api/v3/fetch/10684517",
                "/generations/10684517-0.png",
            ])
        let generation = try #require(upstream.received.first?.json)
        #expect(generation["key"] as? String == upstream.key)
        #expect(generation["init_image"] as? String == Data(TestImages.png(width: 640, height: 480)).base64EncodedString())
        #expect(generation["width"] as? Int == 768 && generation["height"] as? Int == 512 && generation["base64"] as? String == "no")
        #expect(upstream.received.dropFirst().dropLast().allSatisfy { $0.json["key"] as? String == upstream.key })
        #expect(upstream.received.allSatisfy { !String(decoding: $0.body, as: UTF8.self).contains(member.secret) })
        #expect(try await gateway.usage().first?["backend"] as? String == "modelslab")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// The image URLs in an upstream's answer are fetched through its pool only on its own origin;
    /// any other host follows the address rules of members' image URLs, so a compromised upstream
    /// (or one reached over plain http) cannot make the gateway fetch loopback or private
    /// addresses. The member is not charged for what was not delivered; with private addresses
    /// allowed, the same answer is served.
    @Test func outputURLsOnAnotherHostFollowTheAddressRules() async throws {
        let upstream = try FakeModelsLabUpstream(pollsBeforeSuccess: 0, outputHost: "localhost")
        let entry = ProxiedGateway.UpstreamEntry(name: "modelslab", dialect: "modelslab", baseURL: upstream.baseURL, key: upstream.key)
        for allowPrivate in [false, true] {
            let gateway = try await ProxiedGateway.start(
                upstreams: [entry], routes: ["sd1.5-img2img": ["modelslab"]],
                extraYAML: "images:\n  allow_private_addresses: \(allowPrivate)\n")
            let member = try await gateway.createKey(name: "bob", credits: "1")
            let before = upstream.received.count
            let answer = try await gateway.sdk(member.secret, "sd1.5-img2img", ["image": Self.image, "prompt": "a lighthouse", "base64": false])
            let downloads = upstream.received.dropFirst(before).filter { $0.path.hasPrefix("/generations/") }
            if allowPrivate {
                #expect(answer["status"] as? Int == 200, "\(answer)")
                #expect(downloads.count == 1)
            } else {
                #expect(answer["status"] as? Int == 502, "\(answer)")
                #expect(answer["error"] as? String == "the upstream's image URL's host localhost is not a public address", "\(answer)")
                #expect(downloads.isEmpty, "the gateway fetched a loopback address named by the upstream")
                let shown = try await gateway.command(["keys", "show", member.id, "--json"])
                #expect((try JSONSerialization.jsonObject(with: Data(shown.output.utf8)) as? [String: Any])?["available"] as? String == "1")
            }
            #expect(try await gateway.verify().status == 0)
            #expect(try await gateway.stop() == 0)
        }
        await upstream.shutdown()
    }

    /// An answer that lists more images than were asked for has only those asked for downloaded
    /// (each may be 64 MiB: a list of hundreds once held gigabytes), delivered and charged.
    @Test func onlyTheImagesAskedForAreDownloaded() async throws {
        let upstream = try FakeModelsLabUpstream(pollsBeforeSuccess: 0)
        upstream.imagesAnswered = 50
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "modelslab", dialect: "modelslab", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sd1.5-img2img": ["modelslab"]])
        let member = try await gateway.createKey(name: "carol", credits: "1")
        let answer = try await gateway.sdk(
            member.secret, "sd1.5-img2img", ["image": Self.image, "prompt": "two gulls", "samples": 2, "base64": true])
        #expect(answer["status"] as? Int == 200, "\(answer)")
        #expect((answer["images"] as? [Any])?.count == 2, "\(answer)")
        let downloads = upstream.received.filter { $0.path.hasPrefix("/generations/") }.map(\.path)
        #expect(downloads == ["/generations/10684517-0.png", "/generations/10684517-1.png"])
        #expect((answer["headers"] as? [String: String])?["x-cost"] == "0.008", "\(answer)")
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// An image long enough for the gateway to keep its base64 as the request's own bytes (and to
    /// check it past its decoded head) reaches either kind of upstream character for character:
    /// sent as base64, as a data URI, and with spaces around it.
    @Test(arguments: ["segmind", "modelslab"])
    func aLongImageReachesTheUpstreamAsTheMemberSentIt(dialect: String) async throws {
        let upstream: FakeUpstream = dialect == "segmind" ? try FakeSegmindUpstream() : try FakeModelsLabUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "team", dialect: dialect, baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sd1.5-img2img": ["team"]])
        let member = try await gateway.createKey(name: "dave", credits: "1")
        // Bytes after IEND: the header is all the gateway reads. 60 KB, so 80 KB of base64, longer
        // than the part decoded for the header and short enough for a command-line argument.
        let png = TestImages.png(width: 640, height: 480) + (0..<60_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 7) }
        let base64 = Data(png).base64EncodedString()
        #expect(base64.contains("+") && base64.contains("/"))
        for form in [base64, "data:image/png;base64,\(base64)", "  \(base64) "] {
            let answer = try await gateway.sdk(member.secret, "sd1.5-img2img", ["image": form, "prompt": "a fox", "base64": true])
            #expect(answer["status"] as? Int == 200, "\(answer)")
        }
        let sent = upstream.received.filter { $0.path.hasSuffix("img2img") }.map { $0.json[dialect == "segmind" ? "image" : "init_image"] as? String }
        #expect(sent == [base64, base64, base64])
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// Images as long as real ones (the answer's base64 is read without a byte-by-byte scan, and
    /// written into the member's answer without one) arrive whole: one or several, in base64 JSON
    /// or as raw bytes.
    @Test func longImagesInTheUpstreamsAnswerReachTheMemberAsTheUpstreamSentThem() async throws {
        let upstream = try FakeSegmindUpstream()
        upstream.imagePadding = 60_000
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "team", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl1.0-txt2img": ["team"]])
        let member = try await gateway.createKey(name: "erin", credits: "1")
        for (samples, base64) in [(2, true), (1, true), (1, false)] {
            let answer = try await gateway.sdk(
                member.secret, "sdxl1.0-txt2img", ["prompt": "a fox", "samples": samples, "img_width": 1152, "img_height": 896, "base64": base64])
            #expect(answer["status"] as? Int == 200, "\(answer)")
            let expected = FakeSegmindUpstream.image(width: 1152, height: 896, padding: 60_000)
            let images = answer["images"] as? [[String: Any]] ?? []
            #expect(images.count == samples)
            for image in images {
                #expect(image["format"] as? String == "png" && image["width"] as? Int == 1152 && image["height"] as? Int == 896)
                #expect(image["bytes"] as? Int == expected.count)
                #expect(image["tail"] as? String == expected.suffix(16).map { String(format: "%02x", $0) }.joined())
            }
        }
        // A flaw anywhere in the text, also in the part that is checked rather than decoded, is an
        // answer that could not be read: nothing is delivered, nothing charged.
        let before = try await gateway.credits(of: member.id)
        for offset in [30, 70_000, -2] {
            upstream.corruptedAt = offset
            let answer = try await gateway.sdk(member.secret, "sdxl1.0-txt2img", ["prompt": "a fox", "base64": true])
            #expect(answer["status"] as? Int == 502 && answer["error"] as? String == "the upstream's answer could not be read", "\(answer)")
        }
        #expect(try await gateway.credits(of: member.id) == before)
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// What the member sees for each way an upstream fails: (misbehaviour, status, message).
    static let faults: [(UpstreamMisbehaviour, Int, String)] = [
        (.serverError, 502, "the upstream failed (HTTP 500)"),
        (.garbage, 502, "the upstream's answer could not be read"),
        (.cutMidBody, 502, "the upstream's answer could not be read"),
        (.stall, 504, "generation did not finish in time"),
        (.rejectKey, 502, "the upstream rejected the gateway's key"),
        (.outOfCredits, 503, "the upstream account is out of credits"),
        (.rateLimited, 503, "the upstream is limiting the gateway's request rate; retry later"),
    ]

    @Test(arguments: ["segmind", "modelslab"])
    func eachUpstreamFaultGivesTheMemberItsErrorAndVoidsTheHold(dialect: String) async throws {
        let upstream: FakeUpstream = dialect == "segmind" ? try FakeSegmindUpstream() : try FakeModelsLabUpstream()
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "team", dialect: dialect, baseURL: upstream.baseURL, key: upstream.key, deadline: "1s")],
            routes: ["sdxl1.0-txt2img": ["team"]])
        let member = try await gateway.createKey(name: "carol", credits: "1")
        for (misbehaviour, status, message) in Self.faults {
            upstream.misbehave(misbehaviour)
            let answer = try await gateway.sdk(member.secret, "sdxl1.0-txt2img", ["prompt": "a fox"])
            #expect(answer["status"] as? Int == status && answer["error"] as? String == message, "\(misbehaviour): \(answer)")
        }
        // Retry-After travels with the rate limit: the upstream's own, or ModelsLab's 30 s spam window.
        upstream.misbehave(.rateLimited)
        let limited = try await Command.run(
            "curl",
            [
                "-sS", "-o", "/dev/null", "-D", "-", "-H", "x-api-key: \(member.secret)",
                "-H", "Content-Type: application/json", "-d", #"{"prompt":"a fox"}"#, "http://127.0.0.1:\(gateway.port)/v1/sdxl1.0-txt2img",
            ])
        #expect(limited.output.lowercased().contains("retry-after: \(dialect == "segmind" ? 7 : 30)\r\n"), "\(limited.output)")
        upstream.misbehave(nil)

        // Nothing was charged or left held; every failure is in the usage report, uncharged.
        #expect(try await gateway.credits(of: member.id) == ("1", "0"))
        let usage = try await gateway.usage()
        #expect(usage.map { $0["status"] as? Int } == Self.faults.map(\.1) + [503])
        #expect(usage.allSatisfy { $0["cost"] as? String == "0" })
        let verified = try await gateway.verify()
        #expect(verified.status == 0, "\(verified.output)\(verified.errors)")
        #expect(try await gateway.stop() == 0)
        #expect(!gateway.log.contains(upstream.key) && !gateway.log.contains(member.secret))
        await upstream.shutdown()
    }

    @Test func withTheFirstUpstreamRefusingConnectionsRequestsSucceedThroughTheSecond() async throws {
        let down = try FakeSegmindUpstream(), up = try FakeSegmindUpstream()
        await down.refuseConnections()
        let gateway = try await ProxiedGateway.start(
            upstreams: [
                .init(name: "first", dialect: "segmind", baseURL: down.baseURL, key: down.key),
                .init(name: "second", dialect: "segmind", baseURL: up.baseURL, key: up.key),
            ],
            routes: ["sdxl1.0-txt2img": ["first", "second"]])
        let member = try await gateway.createKey(name: "dave", credits: "1")
        for _ in 0..<3 {
            let answer = try await gateway.sdk(member.secret, "sdxl1.0-txt2img", ["prompt": "a fox"])
            #expect(answer["status"] as? Int == 200, "\(answer)")
        }
        #expect(down.received.isEmpty && up.received.count == 3)
        #expect(try await gateway.usage().map { $0["backend"] as? String } == ["second", "second", "second"])
        #expect(try await gateway.credits(of: member.id) == ("0.976", "0"))
        #expect(try await gateway.stop() == 0)
        #expect(gateway.log.contains("upstream unreachable"))

        // With no upstream reachable at all, the member gets a 502 and keeps the credits.
        await up.refuseConnections()
        let alone = try await gateway.restarted()
        let answer = try await alone.sdk(member.secret, "sdxl1.0-txt2img", ["prompt": "a fox"])
        #expect(answer["status"] as? Int == 502 && answer["error"] as? String == "no upstream for model 'sdxl1.0-txt2img' could be reached")
        #expect(try await alone.credits(of: member.id) == ("0.976", "0"))
        #expect(try await alone.stop() == 0)
    }

    /// A ModelsLab upstream that accepted a generation and then refuses connections (while the
    /// gateway polls `fetch`, or before it downloads the images) is the member's 502: the paid work
    /// began there, so the route does not send the request to its next upstream (the team would pay
    /// twice), nothing is charged, and the upstream is not reported unreachable.
    @Test(arguments: [FakeModelsLabUpstream.Step.accepting, .finishing])
    func aModelsLabUpstreamThatGoesDownAfterAcceptingIsNotPassedOver(step: FakeModelsLabUpstream.Step) async throws {
        let modelslab = try FakeModelsLabUpstream(pollsBeforeSuccess: 0), segmind = try FakeSegmindUpstream()
        modelslab.goesDownAfter = step
        let gateway = try await ProxiedGateway.start(
            upstreams: [
                .init(name: "modelslab", dialect: "modelslab", baseURL: modelslab.baseURL, key: modelslab.key),
                .init(name: "segmind", dialect: "segmind", baseURL: segmind.baseURL, key: segmind.key),
            ],
            routes: ["sdxl1.0-txt2img": ["modelslab", "segmind"]])
        let member = try await gateway.createKey(name: "frank", credits: "1")

        let answer = try await gateway.sdk(member.secret, "sdxl1.0-txt2img", ["prompt": "a fox"])
        #expect(answer["status"] as? Int == 502, "\(answer)")
        #expect(answer["error"] as? String == "the upstream could not be reached after it accepted the generation", "\(answer)")
        #expect(modelslab.received.first?.path == "/api/v3/text2img")
        #expect(segmind.received.isEmpty, "the request was sent to a second upstream")
        #expect(try await gateway.credits(of: member.id) == ("1", "0"))
        #expect(try await gateway.usage().map { $0["status"] as? Int } == [502])
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        #expect(!gateway.log.contains("upstream unreachable"), "\(gateway.log)")
        await modelslab.shutdown()
        await segmind.shutdown()
    }

    /// A ModelsLab upstream is sent ModelsLab's own scheduler names (diffusers' class names: the
    /// names the ModelsLab dialect takes, read back), and SD3's sampler as its scheduler. A
    /// scheduler ModelsLab has no name for is refused (422) before anything is sent, and not charged.
    @Test func aModelsLabUpstreamIsSentModelsLabsSchedulerNames() async throws {
        let upstream = try FakeModelsLabUpstream(pollsBeforeSuccess: 0)
        let gateway = try await ProxiedGateway.start(
            upstreams: [.init(name: "modelslab", dialect: "modelslab", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sd1.5-img2img": ["modelslab"], "sdxl1.0-txt2img": ["modelslab"], "sd3-med-img2img": ["modelslab"]])
        let member = try await gateway.createKey(name: "grace", credits: "1")

        let sent: [(String, [String: Any], String)] = [
            ("sd1.5-img2img", ["image": Self.image], "DDIMScheduler"),
            ("sdxl1.0-txt2img", ["scheduler": "Euler a"], "EulerAncestralDiscreteScheduler"),
            ("sdxl1.0-txt2img", ["scheduler": "unipc"], "UniPCMultistepScheduler"),
            ("sd3-med-img2img", ["image": Self.image, "sampler": "euler"], "EulerDiscreteScheduler"),
        ]
        for (model, parameters, scheduler) in sent {
            let before = upstream.received.count
            let answer = try await gateway.sdk(member.secret, model, parameters.merging(["prompt": "a fox"]) { $1 })
            #expect(answer["status"] as? Int == 200, "\(model) \(parameters): \(answer)")
            let generation = upstream.received.dropFirst(before).first
            #expect(generation?.json["scheduler"] as? String == scheduler, "\(model) \(parameters)")
        }
        let paid = try await gateway.credits(of: member.id)

        for (model, parameters) in [
            ("sdxl1.0-txt2img", ["scheduler": "DPM2 Karras"]), ("sd3-med-img2img", ["image": Self.image, "sampler": "dpmpp_sde"]),
        ] {
            let before = upstream.received.count
            let answer = try await gateway.sdk(member.secret, model, parameters.merging(["prompt": "a fox"]) { $1 })
            #expect(answer["status"] as? Int == 422, "\(model) \(parameters): \(answer)")
            #expect((answer["error"] as? String)?.contains("does not run on this model's upstream") == true, "\(answer)")
            #expect(upstream.received.count == before, "a scheduler ModelsLab cannot run was sent")
        }
        #expect(try await gateway.credits(of: member.id) == paid)
        #expect(try await gateway.verify().status == 0)
        #expect(try await gateway.stop() == 0)
        await upstream.shutdown()
    }

    /// Chaining: the SDK → sdgate A → sdgate B → a fake Segmind. A's upstream key is a member key
    /// of B; each gateway charges its own member, and A records what B charged.
    @Test func aSecondSdgateIsTheUpstreamOfAFirst() async throws {
        let upstream = try FakeSegmindUpstream()
        let second = try await ProxiedGateway.start(
            upstreams: [.init(name: "segmind", dialect: "segmind", baseURL: upstream.baseURL, key: upstream.key)],
            routes: ["sdxl-img2img": ["segmind"]])
        let team = try await second.createKey(name: "team-a", credits: "1")
        let first = try await ProxiedGateway.start(
            upstreams: [.init(name: "gateway_b", dialect: "segmind", baseURL: "http://127.0.0.1:\(second.port)", key: team.secret)],
            routes: ["sdxl-img2img": ["gateway_b"]])
        let member = try await first.createKey(name: "erin", credits: "2")

        let answer = try await first.sdk(member.secret, "sdxl-img2img", ["image": Self.image, "prompt": "a fox", "samples": 3, "seed": 7])
        #expect(answer["status"] as? Int == 200, "\(answer)")
        #expect((answer["images"] as? [[String: Any]])?.count == 3)
        #expect((answer["headers"] as? [String: String])?["x-seed-value"] == "7")
        #expect(upstream.received.first?.headers["x-api-key"] == upstream.key)

        #expect(try await first.credits(of: member.id) == ("1.94", "0"))
        #expect(try await second.credits(of: team.id) == ("0.94", "0"))
        let firstUsage = try await first.usage(), secondUsage = try await second.usage()
        #expect(firstUsage.first?["upstream_cost"] as? String == "0.06", "A records what B charged")
        #expect(firstUsage.first?["upstream_remaining_credits"] as? String == "0.94")
        #expect(secondUsage.first?["key_id"] as? String == team.id && secondUsage.first?["upstream_cost"] as? String == upstream.cost)
        #expect(try await first.verify().status == 0)
        #expect(try await second.verify().status == 0)

        // B's refusal of A's key (revoked) is A's gateway error, not the member's 401.
        #expect(try await second.command(["keys", "revoke", team.id]).status == 0)
        let refused = try await first.sdk(member.secret, "sdxl-img2img", ["image": Self.image, "prompt": "a fox"])
        #expect(refused["status"] as? Int == 502 && refused["error"] as? String == "the upstream rejected the gateway's key")
        #expect(try await first.credits(of: member.id) == ("1.94", "0"))
        #expect(try await first.stop() == 0)
        #expect(try await second.stop() == 0)
        await upstream.shutdown()
    }
}
