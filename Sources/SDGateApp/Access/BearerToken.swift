import GatewayAPI
import HTTPServer
import Ledger

/// `Authorization: Bearer <token>` checked against a token's SHA-256, in constant time: the admin
/// API's and the metrics' credentials, which are kept only as hashes.
enum BearerToken {
    static func matches(_ headers: HTTPHeaders, hash: [UInt8]) -> Bool {
        guard let token = headers.bearerToken else { return false }
        return APIKeySecret.constantTimeEqual(APIKeySecret.hash(token), hash)
    }
}
