public import Foundation
public import GuardedHTTP

/// Fetches a member's image URL under the address rules (`GuardedFetcher`).
public struct URLImageFetcher: ImageFetcher {
    private let fetcher: GuardedFetcher

    /// The bytes all image URLs being received may hold at once: the body budget's default.
    public static let defaultBudget = 256 << 20

    public init(
        policy: AddressPolicy = AddressPolicy(), timeout: Duration = .seconds(15), maxRedirects: Int = 3,
        budget: FetchBudget = FetchBudget(limit: defaultBudget), resolver: HostResolver = .system
    ) {
        fetcher = GuardedFetcher(
            policy: policy, timeout: timeout, maxRedirects: maxRedirects, subject: "the image URL", budget: budget, resolver: resolver)
    }

    public func fetch(_ url: URL, maxBytes: Int) async throws(ImageProblem) -> [UInt8] {
        do {
            return try await fetcher.get(url, maxBytes: maxBytes)
        } catch {
            throw ImageProblem(error.message, busy: error.busy)
        }
    }
}
