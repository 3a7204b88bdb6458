/// The price of a request: `perImage` at the model's default steps, scaled by samples and steps.
public struct PriceRule: Sendable {
    public let perImage: Credits

    public init(perImage: Credits) {
        self.perImage = perImage
    }

    /// In whole micro-credits, rounded up: a client never pays less than the rule says. A product
    /// past 64 bits (a catalog's extreme price and ranges) comes out as the largest amount, which no
    /// balance covers, rather than trapping.
    public func cost(samples: Int, steps: Int, defaultSteps: Int) -> Credits {
        let (perSample, overflowA) = perImage.microCredits.multipliedReportingOverflow(by: Int64(max(samples, 0)))
        let (numerator, overflowB) = perSample.multipliedReportingOverflow(by: Int64(max(steps, 0)))
        let denominator = Int64(max(defaultSteps, 1))
        guard !overflowA, !overflowB, numerator <= Int64.max - denominator else { return Credits(microCredits: .max) }
        return Credits(microCredits: (numerator + denominator - 1) / denominator)
    }
}

/// What one request's images cost, by how many the backend delivers: the model's rule with the
/// request's steps. Held for every image asked for, charged for those delivered; kept with a job.
public struct RequestPrice: Codable, Sendable, Equatable {
    public let perImageMicroCredits: Int64
    public let steps: Int
    public let defaultSteps: Int

    public init(perImage: Credits, steps: Int, defaultSteps: Int) {
        perImageMicroCredits = perImage.microCredits
        self.steps = steps
        self.defaultSteps = defaultSteps
    }

    public func cost(images: Int) -> Credits {
        PriceRule(perImage: Credits(microCredits: perImageMicroCredits)).cost(samples: images, steps: steps, defaultSteps: defaultSteps)
    }
}
