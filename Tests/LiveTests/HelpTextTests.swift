import Foundation
import ProcessSupport
import Testing

/// Every command's `--help` reads well at 80 columns: no discussion line is longer, so
/// ArgumentParser never re-wraps one into ragged fragments (`HelpText.reflow`'s rule), checked
/// on the command tree the binary itself describes (`--experimental-dump-help`).
@Suite(.tags(.live), .timeLimit(.minutes(3))) struct HelpTextTests {
    @Test func noCommandsDiscussionHasALineLongerThan80Columns() async throws {
        let (status, output) = try await runEdgepool(["--experimental-dump-help"])
        #expect(status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.joined(separator: "\n").utf8)) as? [String: Any])
        var commands = 0
        var long: [String] = []
        func walk(_ command: [String: Any], _ path: String) {
            commands += 1
            for line in ((command["discussion"] as? String) ?? "").split(separator: "\n") where line.count > 80 {
                long.append("\(path): \(line.count) columns: \(line)")
            }
            for sub in (command["subcommands"] as? [[String: Any]]) ?? [] {
                walk(sub, path + " " + ((sub["commandName"] as? String) ?? "?"))
            }
        }
        walk(try #require(json["command"] as? [String: Any]), "edgepool")
        #expect(commands > 40, "the whole tree was walked (\(commands) commands)")
        #expect(long.isEmpty, "\(long.joined(separator: "\n"))")
    }
}
