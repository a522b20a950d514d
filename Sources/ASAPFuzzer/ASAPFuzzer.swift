import CalcApp
import NIOCore
import RSerPoolWire

/// Feeds arbitrary bytes to the ASAP and the ENRP stream decoders, as a registrar's
/// associations would, and to the CalcApp session decoder, as a PE's sessions would. Invariants checked: no crash, no hang; every decoded message
/// re-encodes to a frame that decodes to the same message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzASAPDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    fuzzASAP(input)
    fuzzENRP(input)
    fuzzCalcAppSession(input)
    return 0
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
struct ASAPFuzzerMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzASAPDecoder(data, size) })
    }
}
#else
/// Without libFuzzer: replays the files given as arguments (a corpus or a crash file).
@main
struct ASAPFuzzerReplay {
    static func main() {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            guard let bytes = readFile(path) else {
                print("cannot read \(path)")
                continue
            }
            _ = bytes.withUnsafeBufferPointer { fuzzASAPDecoder($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, $0.count) }
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
