import Foundation
import Gateway
import NIOConcurrencyHelpers

/// Appends one JSON object per finished connection to a file (or standard output), off the
/// event loops. Bounded: if the disk stalls and ``maximumPendingLines`` are queued, further
/// lines are dropped and counted.
final class ConnectionLog: Sendable {
    static let maximumPendingLines = 10_000

    private let handle: FileHandle
    private let queue = DispatchQueue(label: "edgepool.gateway.connection-log")
    private let pending = NIOLockedValueBox((lines: 0, dropped: 0))

    init(path: String) throws {
        if path == "-" {
            handle = FileHandle.standardOutput
        } else {
            if !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: nil) else {
                    throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
                }
            }
            guard let handle = FileHandle(forWritingAtPath: path) else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
            }
            handle.seekToEndOfFile()
            self.handle = handle
        }
    }

    var droppedLines: Int { pending.withLockedValue { $0.dropped } }

    func append(_ record: ConnectionRecord) {
        let admitted = pending.withLockedValue { state in
            guard state.lines < Self.maximumPendingLines else {
                state.dropped += 1
                return false
            }
            state.lines += 1
            return true
        }
        guard admitted else { return }
        queue.async { [handle, pending] in
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            if var data = try? encoder.encode(record) {
                data.append(UInt8(ascii: "\n"))
                handle.write(data)
            }
            pending.withLockedValue { $0.lines -= 1 }
        }
    }

    /// Waits until every queued line is written.
    func flush() {
        queue.sync {}
    }
}

/// Reads a log written by `ConnectionLog.append(_:)`; lines that do not decode are counted, not fatal.
public func readConnectionLog(path: String) throws -> (records: [ConnectionRecord], unreadable: Int) {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let decoder = JSONDecoder()
    var records: [ConnectionRecord] = []
    var unreadable = 0
    for line in text.split(separator: "\n") where !line.isEmpty {
        if let record = try? decoder.decode(ConnectionRecord.self, from: Data(line.utf8)) { records.append(record) } else { unreadable += 1 }
    }
    return (records, unreadable)
}

/// Reads several connection logs (`edgepool gateway stats`); an unreadable file is an error
/// that names it.
public func readConnectionLogs(paths: [String]) throws -> (records: [ConnectionRecord], unreadable: Int) {
    var records: [ConnectionRecord] = [], unreadable = 0
    for path in paths {
        do {
            let read = try readConnectionLog(path: path)
            records += read.records
            unreadable += read.unreadable
        } catch {
            throw GatewayConfigurationError("cannot read '\(path)': \(error.localizedDescription)")
        }
    }
    return (records, unreadable)
}
