import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// Debugging encrypted ASAP and ENRP: with the environment variable `SSLKEYLOGFILE` set (as
/// for curl and browsers), every TLS session's secrets are appended to that file in the NSS
/// key log format, so that Wireshark (`tls.keylog_file`) decrypts a capture and frames the
/// ASAP/ENRP inside. Never set it in production: whoever reads the file reads the traffic.
public enum TLSKeyLog {
    /// The file named by `SSLKEYLOGFILE`, if set.
    public static let path: String? = ProcessInfo.processInfo.environment["SSLKEYLOGFILE"].flatMap { $0.isEmpty ? nil : $0 }

    private static let file: NIOLockedValueBox<FileHandle?> = NIOLockedValueBox({
        guard let path else { return nil }
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) }
        guard let handle = FileHandle(forWritingAtPath: path) else { return nil }
        handle.seekToEndOfFile()
        return handle
    }())

    /// The callback for TLS configurations: nil unless `SSLKEYLOGFILE` is set.
    static var callback: NIOSSLKeyLogCallback? {
        guard path != nil else { return nil }
        return { line in
            var line = line
            let bytes = line.readBytes(length: line.readableBytes) ?? []
            file.withLockedValue { handle in
                handle?.write(Data(bytes + [0x0A]))
            }
        }
    }
}
