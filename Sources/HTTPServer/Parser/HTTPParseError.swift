/// Why a request could not be parsed, with the status it is answered with.
///
/// Every case ends the connection: once framing is in doubt, nothing after it can be trusted
/// (RFC 9112 §6.3, §11.2).
public enum HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidRequestLine
    case requestLineTooLong
    case unsupportedVersion
    case invalidHeaderName
    case invalidHeaderValue
    case obsoleteLineFolding
    case invalidLineEnding
    case headerSectionTooLarge
    case tooManyHeaderFields
    case missingHost
    case multipleHost
    case invalidHost
    case invalidContentLength
    case conflictingContentLength
    case contentLengthWithTransferEncoding
    case transferEncodingInHTTP10
    case chunkedNotFinal
    case unsupportedTransferCoding
    case invalidChunkSize
    case invalidChunkTerminator
    case chunkLineTooLong
    case bodyTooLarge

    /// The status of the answer (RFC 9112 §3, §6.1, §6.3; RFC 9110 §15.5).
    public var status: HTTPStatus {
        switch self {
        case .requestLineTooLong: .uriTooLong
        case .headerSectionTooLarge, .tooManyHeaderFields: .headerFieldsTooLarge
        case .unsupportedVersion: .versionNotSupported
        case .unsupportedTransferCoding: .notImplemented
        case .bodyTooLarge: .contentTooLarge
        default: .badRequest
        }
    }

    /// A short, client-safe explanation used as the error body.
    public var description: String {
        switch self {
        case .invalidRequestLine: "malformed request line"
        case .requestLineTooLong: "request line too long"
        case .unsupportedVersion: "HTTP version not supported"
        case .invalidHeaderName: "invalid header field name"
        case .invalidHeaderValue: "invalid character in header field value"
        case .obsoleteLineFolding: "obsolete line folding is not accepted"
        case .invalidLineEnding: "lines must end with CRLF"
        case .headerSectionTooLarge: "header section too large"
        case .tooManyHeaderFields: "too many header fields"
        case .missingHost: "missing Host header field"
        case .multipleHost: "more than one Host header field"
        case .invalidHost: "invalid Host header field"
        case .invalidContentLength: "invalid Content-Length"
        case .conflictingContentLength: "conflicting Content-Length values"
        case .contentLengthWithTransferEncoding: "Content-Length together with Transfer-Encoding"
        case .transferEncodingInHTTP10: "Transfer-Encoding in an HTTP/1.0 request"
        case .chunkedNotFinal: "chunked must be the final transfer coding"
        case .unsupportedTransferCoding: "transfer coding not implemented"
        case .invalidChunkSize: "invalid chunk size"
        case .invalidChunkTerminator: "chunk data not followed by CRLF"
        case .chunkLineTooLong: "chunk size line too long"
        case .bodyTooLarge: "request body too large"
        }
    }
}
