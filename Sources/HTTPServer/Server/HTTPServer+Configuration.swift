#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension HTTPServer {
    /// Every knob of the server, with the defaults it runs with. Each limit is enforced and tested
    /// at its edge; none is unbounded.
    public struct Configuration: Sendable {
        /// The address to bind: a numeric IPv4 or IPv6 address (`0.0.0.0`, `::`, `127.0.0.1`).
        public var host = "0.0.0.0"
        /// The port; 0 picks a free one (read it back from `start()`).
        public var port = 8080
        /// The listen(2) backlog.
        public var backlog: Int32 = 1024
        /// Sent as the `Server` header field.
        public var serverName = "sdgate"
        /// How many event loops, each a thread, share the connections: one per core.
        public var eventLoops = HTTPServer.Configuration.coreCount
        public var limits = Limits()
        public var timeouts = Timeouts()
        /// HTTPS with this certificate and key; nil: plain HTTP.
        public var tls: TLS?

        public init() {}

        public struct Limits: Sendable {
            /// Request line, header section and chunk line sizes and the header field count.
            public var parser = HTTPRequestParser.Limits()
            /// Default body limit; a responder may set another per route when it admits a request.
            public var maxBodyBytes = 1 << 20
            /// A rejected request's body up to this size is read and dropped to keep the connection;
            /// a larger one (or one the client holds back for `100 Continue`) closes it instead.
            public var maxDiscardedBodyBytes = 64 * 1024
            /// Open connections; at the limit the server stops accepting until one closes. The
            /// server holds fewer when more would not fit in the process's descriptor limit.
            public var maxConnections = 10_000
            /// Open connections from one client address (an IPv6 client: its /64); more are answered
            /// 503 and closed at once, so that one client cannot take the slots the others need.
            /// 0: no limit. Behind a reverse proxy every connection comes from the proxy's address.
            public var maxConnectionsPerAddress = 256
            /// Request body bytes being received, over all connections together. A body that would
            /// pass it is refused with 503 and `Retry-After` before it is read: what strangers can
            /// make the server hold is bounded, even on routes that learn the key from the body.
            /// A body stops counting once its request goes to the responder.
            public var maxBodyBytesInFlight = 256 << 20
            /// Requests on one connection before the server answers with `Connection: close`.
            public var maxRequestsPerConnection = 10_000
            /// Unsent response bytes at which a streamed body's `write` waits for the client.
            public var outputHighWaterMark = 256 * 1024
            /// Pipelined bytes read ahead while a request is answered, before reading pauses.
            public var maxPipelinedBytes = 64 * 1024

            public init() {}
        }

        public struct Timeouts: Sendable {
            /// From a request's first byte to the end of its head: then 408 and close (slow-header attacks).
            public var headerRead: Duration = .seconds(10)
            /// Longest pause while a body arrives: then 408 and close. Also the slack a body may
            /// fall behind `minBodyRate` by.
            public var bodyIdle: Duration = .seconds(30)
            /// Bytes per second a body must average once it is `bodyIdle` behind (as Apache's
            /// mod_reqtimeout `MinRate`): a client that trickles a body is cut off with 408 instead
            /// of holding its connection. 0: no minimum.
            public var minBodyRate = 1024
            /// From a request's first byte to the end of its body, whatever the rate: then 408 and close.
            public var requestRead: Duration = .seconds(300)
            /// Longest wait for a next request on an idle connection: then it is closed quietly.
            public var keepAliveIdle: Duration = .seconds(60)
            /// Longest wait for a client to take response bytes: then it is closed.
            public var writeIdle: Duration = .seconds(30)
            /// From a TLS connection's accept to the end of its handshake: then it is closed.
            public var tlsHandshake: Duration = .seconds(10)
            /// How often deadlines are checked; a timeout fires up to this much late.
            public var tick: Duration = .milliseconds(250)

            public init() {}
        }

        static var coreCount: Int {
            max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        }
    }
}
