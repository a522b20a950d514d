import CalcApp
import Gateway
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PathManager
import RSerPoolWire

/// Feeds arbitrary bytes to every decoder that reads from an untrusted peer: the ASAP and
/// ENRP stream decoders (a registrar's associations), the CalcApp session decoder (a PE's
/// sessions), the gateway's SOCKS5 handshake and UDP datagrams, pair header and HTTP proxy
/// request reading.
/// Invariants checked: no crash, no hang, bounded buffering; every decoded message
/// re-encodes to a frame that decodes to the same message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtocolDecoders(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    for decoder in FuzzedDecoder.selected { decoder.fuzz(input) }
    return 0
}

/// The decoders, one fuzz target each: `EDGEPOOL_FUZZ_DECODER=asap` (a name below) fuzzes that
/// one alone — its own corpus, its own coverage, the whole input rate — and without the
/// variable every input goes to all of them (CI's short run, replays).
enum FuzzedDecoder: String, CaseIterable {
    case asap, enrp, calcapp, socks5, socks5udp, pair, http, netlink

    func fuzz(_ input: ByteBuffer) {
        switch self {
        case .asap: fuzzASAP(input)
        case .enrp: fuzzENRP(input)
        case .calcapp: fuzzCalcAppSession(input)
        case .socks5: fuzzSOCKS5(input)
        case .socks5udp: fuzzSOCKS5UDP(input)
        case .pair: fuzzPairHeader(input)
        case .http: fuzzHTTPProxyRequest(input)
        case .netlink: fuzzNetlink(input)
        }
    }

    /// Read once: the decoder the environment names, or all of them.
    static let selected: [FuzzedDecoder] = {
        guard let name = getenv("EDGEPOOL_FUZZ_DECODER").map({ String(cString: $0) }), !name.isEmpty else { return allCases }
        guard let decoder = FuzzedDecoder(rawValue: name) else {
            print("EDGEPOOL_FUZZ_DECODER=\(name) is not one of \(allCases.map(\.rawValue).joined(separator: ", "))")
            exit(2)
        }
        return [decoder]
    }()
}

/// What the kernel sends the path manager (netlink datagrams: generic netlink replies,
/// mptcp_pm events and endpoint dumps). The kernel is trusted, but a decoder that crashes on
/// a newer kernel's attributes would take the path manager down.
func fuzzNetlink(_ input: ByteBuffer) {
    guard let messages = try? NetlinkMessage.parse(input) else { return }
    for message in messages {
        _ = try? MPTCPEvent(message)
        _ = try? MPTCPPathManager.endpoints(in: message)
        _ = try? GenericNetlink.family(from: message)
        // What parses re-encodes to the same bytes (the header's length included).
        var again = ByteBuffer()
        message.write(to: &again)
        precondition((try? NetlinkMessage.parse(again))?.first?.payload == message.payload, "a netlink message does not round-trip")
    }
}

/// The gateway's SOCKS5 server side, with and without authentication, fed in two pieces.
func fuzzSOCKS5(_ input: ByteBuffer) {
    for (credentials, udp) in [(nil, false), (ProxyCredentials(["user": "password"]), true)] {
        var handshake = SOCKS5ServerHandshake(credentials: credentials, allowsUDP: udp)
        var buffer = ByteBuffer()
        var pieces = [input.getSlice(at: input.readerIndex, length: input.readableBytes / 2)!,
                      input.getSlice(at: input.readerIndex + input.readableBytes / 2, length: input.readableBytes - input.readableBytes / 2)!]
        feeding: for index in pieces.indices {
            buffer.writeBuffer(&pieces[index])
            for _ in 0..<8 {
                let before = buffer.readableBytes
                switch handshake.process(&buffer) {
                case .needMoreData: continue feeding
                case .send: precondition(buffer.readableBytes < before, "a reply without consuming input")
                case .connect(let destination, _), .associate(let destination, _):
                    var encoded = ByteBuffer()
                    destination.write(to: &encoded)
                    precondition((try? ProxyDestination.read(from: &encoded)) == destination, "destination does not round-trip")
                    _ = handshake.connected(boundTo: destination)
                    break feeding
                case .reject: break feeding
                }
            }
        }
    }
}

/// A datagram from a SOCKS5 UDP client: relayed (its header re-encodes to the bytes it
/// came from, the payload is the rest) or dropped, never a trap; an answer from the peer
/// it went to goes back to the client with the peer as its header.
func fuzzSOCKS5UDP(_ input: ByteBuffer) {
    let client = SOCKS5UDPAssociation.Endpoint(address: .ipv4Loopback, port: 5000)
    var association = SOCKS5UDPAssociation(client: .ipv4Loopback, requested: ProxyDestination(host: .address(.v4(0)), port: 0))
    guard case .relay(let destination, let payload) = association.fromClient(client, datagram: input) else { return }
    var header = ByteBuffer()
    SOCKS5UDPHeader(address: destination).write(to: &header)
    header.writeImmutableBuffer(payload)
    let givenAsName = input.getInteger(at: input.readerIndex + 3, as: UInt8.self) == SOCKSAddressType.domainName.rawValue
    if case .name = destination.host {
        // A name re-encodes normalised (lower case, no trailing dot): the same or one byte shorter.
        precondition(header.readableBytes == input.readableBytes || header.readableBytes == input.readableBytes - 1, "a relayed datagram lost or gained bytes")
    } else if givenAsName {
        // An IP literal in the domain field ("::a", "10.0.0.1") is taken as the address it
        // names (so the destination rules see an address): it re-encodes as that address type,
        // and what it carries is unchanged.
        var again = header
        let reread = try? SOCKS5UDPHeader.read(from: &again)
        precondition(reread?.address == destination && again == payload, "an IP literal given as a name does not re-encode to the same destination")
    } else {
        precondition(header == input, "a relayed datagram does not re-encode to its input")
    }
    let peer = SOCKS5UDPAssociation.Endpoint(address: .v4(0x0A00_0001), port: destination.port)
    association.sent(to: peer)
    guard case .deliver(let to, _) = association.fromPeer(peer, payload: payload) else {
        precondition(payload.readableBytes > SOCKS5UDPAssociation.maximumDatagram - 10, "an answer from a known peer was dropped")
        return
    }
    precondition(to == client, "an answer went elsewhere than to the client")
}

/// The exit gateway reading an entry's header (any bytes: must refuse, never trap).
func fuzzPairHeader(_ input: ByteBuffer) {
    var buffer = input
    var replayGuard = PairReplayGuard()
    let secret = try! PairSecret("fuzzing secret, sixteen+ bytes")
    _ = try? PairHeader.read(from: &buffer, secret: secret, nowMilliseconds: 1_000_000, replayGuard: &replayGuard)
}

/// The HTTP proxy's request side: NIO's decoder as the gateway configures it, then the
/// proxy's interpretation of every request head (target, smuggling checks, credentials).
func fuzzHTTPProxyRequest(_ input: ByteBuffer) {
    let channel = EmbeddedChannel()
    defer { _ = try? channel.finish() }
    do {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
        try channel.writeInbound(input)
    } catch {
        return   // the decoder refused the bytes: the gateway answers 400 and closes
    }
    let interpreter = HTTPProxyRequestInterpreter(credentials: ProxyCredentials(["user": "password"]))
    let open = HTTPProxyRequestInterpreter(credentials: nil)
    while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
        guard case .head(let head) = part else { continue }
        _ = interpreter.interpret(head)
        if case .forward(_, let forwarded, _) = open.interpret(head) {
            precondition(forwarded.headers["proxy-authorization"].isEmpty && forwarded.uri.hasPrefix("/"), "a forwarded head kept proxy fields")
        }
    }
}

/// A PE's view of a PU↔PE session (CalcApp and ASAP session messages on one stream).
func fuzzCalcAppSession(_ input: ByteBuffer) {
    var buffer = input
    while buffer.readableBytes > 0 {
        do {
            guard let message = try SessionMessage.decode(from: &buffer) else { break }
            var encoded = ByteBuffer()
            message.write(into: &encoded)
            let again = try SessionMessage.decode(from: &encoded)
            precondition(again == message, "re-encoding changed a session message")
        } catch {
            break  // the session would be closed
        }
    }
}

func fuzzENRP(_ input: ByteBuffer) {
    var buffer = input
    while buffer.readableBytes > 0 {
        let before = buffer.readableBytes
        do {
            guard let message = try ENRPMessage.decode(from: &buffer) else { break }
            let again = try ENRPMessage.decode(frame: message.encoded())
            precondition(again == message, "re-encoding changed \(message.type)")
        } catch {
            if buffer.readableBytes == before { break }
        }
    }
}

func fuzzASAP(_ input: ByteBuffer) {
    var buffer = input
    while buffer.readableBytes > 0 {
        let before = buffer.readableBytes
        do {
            guard let decoded = try ASAPMessage.decode(from: &buffer) else { break }
            let again = try ASAPMessage.decode(frame: decoded.message.encoded())
            precondition(again.message == decoded.message, "re-encoding changed \(decoded.message.type)")
        } catch {
            // A framing error leaves the buffer as it was: the stream would be closed.
            if buffer.readableBytes == before { break }
        }
    }
}

#if FUZZING
/// libFuzzer's entry point (SwiftPM makes this target's `main` the program's, so libFuzzer's
/// own `main` is not used; its driver is called instead).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@main
struct EdgePoolFuzzerMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzProtocolDecoders(data, size) })
    }
}
#else
/// Without libFuzzer: replays the files given as arguments (a corpus or a crash file).
@main
struct EdgePoolFuzzerReplay {
    static func main() {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            guard let bytes = readFile(path) else {
                print("cannot read \(path)")
                continue
            }
            _ = bytes.withUnsafeBufferPointer { fuzzProtocolDecoders($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
            count += 1
        }
        print("replayed \(count) input(s) without a failure")
    }
}
#endif

#if canImport(Glibc)
import Glibc
#endif

func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let read = fread(&chunk, 1, chunk.count, file)
        if read <= 0 { break }
        bytes.append(contentsOf: chunk[0..<read])
    }
    return bytes
}
