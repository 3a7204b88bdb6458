public import Foundation
public import GuardedHTTP

/// Fetches a member's image URL under the address rules (`GuardedFetcher`).
public struct URLImageFetcher: ImageFetcher {
    private let fetcher: GuardedFetcher

    public init(policy: AddressPolicy = AddressPolicy(), timeout: Duration = .seconds(15), maxRedirects: Int = 3) {
        fetcher = GuardedFetcher(policy: policy, timeout: timeout, maxRedirects: maxRedirects, subject: "the image URL")
    }

    public func fetch(_ url: URL, maxBytes: Int) async throws(ImageProblem) -> [UInt8] {
        do {
            return try await fetcher.get(url, maxBytes: maxBytes)
        } catch {
            throw ImageProblem(error.message)
        }
    }
}
