// Bare SwiftNIO reference server: NIOHTTP1's pipeline and one handler, no framework. This is the
// floor of what a NIO-based server costs, against which Hummingbird and sdgate are compared.
import BenchmarkSupport
import Dispatch
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Collects one request (head and whole body, like the other servers do) and answers on `.end`.
final class Handler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maxBodyBytes = 2 << 20

    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            tooLarge = false
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > Self.maxBodyBytes {
                tooLarge = true
            } else {
                body.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let (status, json) = route(head)
            respond(context: context, head: head, status: status, json: json)
        }
    }

    private func route(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        if tooLarge { return (.payloadTooLarge, #"{"error":"Payload too large"}"#) }
        switch (head.method, path) {
        case (.GET, "/health"):
            return (.ok, #"{"status":"ok"}"#)
        case (.POST, "/upload"):
            return (.ok, "{\"bytes\":\(body.readableBytes)}")
        case (.POST, _) where path.hasPrefix("/v1/") && path.count > 4 && !path.dropFirst(4).contains("/"):
            return (.unauthorized, #"{"error":"Missing Authorization or x-api-key"}"#)
        default:
            return (.notFound, #"{"error":"Not found"}"#)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, json: String) {
        let keepAlive = head.isKeepAlive && !tooLarge
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(json.utf8.count))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let responseHead = HTTPResponseHead(version: head.version, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: json)))), promise: nil)
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel  // Sendable, unlike the context
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 512)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(Handler())
        }
    }

let channel = try bootstrap.bind(host: "127.0.0.1", port: portArgument()).wait()
announce("listening on 127.0.0.1:\(channel.localAddress?.port ?? 0)")

// Stop accepting on SIGTERM/SIGINT; main then returns from the wait below and shuts down. The
// handler is @Sendable so it is not inferred to be main-actor isolated (main is blocked in wait()).
var signalSources: [any DispatchSourceSignal] = []
for signalNumber in [SIGTERM, SIGINT] {
    signal(signalNumber, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
    source.setEventHandler { @Sendable in channel.close(promise: nil) }
    source.resume()
    signalSources.append(source)
}
try channel.closeFuture.wait()
try group.syncShutdownGracefully()
