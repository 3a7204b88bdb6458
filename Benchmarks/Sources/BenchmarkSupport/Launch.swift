// What every benchmark server does at start-up, so that the runner can drive them alike.
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Prints `line` at once: stdout is a pipe under the runner, so it is block-buffered otherwise.
public func announce(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
}

/// The value of `--port N`, or 0 (any free port).
public func portArgument() -> Int {
    intArgument("--port") ?? 0
}

/// The value of `NAME N`, when given and a number from 0 to 2^20.
public func intArgument(_ name: String) -> Int? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let value = Int(arguments[index + 1]),
        (0...(1 << 20)).contains(value)
    else { return nil }
    return value
}

/// Parks the main thread until SIGTERM or SIGINT, then runs `shutdown` (a drain) and exits.
public func serveUntilSignalled(shutdown: @escaping @Sendable () async -> Void) -> Never {
    var sources: [any DispatchSourceSignal] = []
    for number in [SIGTERM, SIGINT] {
        // The default action would end the process before the source sees the signal.
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .main)
        source.setEventHandler {
            Task {
                await shutdown()
                exit(0)
            }
        }
        source.resume()
        sources.append(source)
    }
    withExtendedLifetime(sources) { dispatchMain() }
}
