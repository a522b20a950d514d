
/// The one wrapping rule of every command's discussion: prose is reflowed to
/// ``HelpText.width`` columns, so ArgumentParser (which re-wraps any line longer than the
/// terminal, 80 columns when it is not one) never breaks a line a second time. Lines that start
/// with spaces — examples, lists — keep their indentation; a longer one wraps with a hanging
/// indent, and an example command is continued with a backslash, so it still pastes into a shell.
enum HelpText {
    static let width = 78

    static func reflow(_ text: String) -> String {
        var out: [String] = []
        var paragraph: [String] = []
        func flushParagraph() {
            guard !paragraph.isEmpty else { return }
            out += wrap(paragraph.joined(separator: " "), indent: "", hanging: "")
            paragraph = []
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                flushParagraph()
                out.append("")
            } else if line.first == " " {
                flushParagraph()
                let indent = String(line.prefix { $0 == " " })
                let body = String(line.dropFirst(indent.count))
                if line.count <= width {
                    out.append(line)   // as written: examples and aligned columns keep their spacing
                } else if isCommand(body) {
                    out += wrap(body, indent: indent, hanging: indent + "    ", continuation: " \\")
                } else {
                    out += wrap(body, indent: indent, hanging: indent + "  ")
                }
            } else {
                paragraph.append(line)
            }
        }
        flushParagraph()
        return out.joined(separator: "\n")
    }

    private static let commands = ["edgepool ", "curl ", "swift ", "scripts/", "ip ", "sudo "]

    private static func isCommand(_ body: String) -> Bool { commands.contains { body.hasPrefix($0) } }

    /// Words onto lines of at most `width` columns (a word longer than a line stands alone);
    /// each broken line ends with `continuation` (a shell command's backslash).
    private static func wrap(_ text: String, indent: String, hanging: String, continuation: String = "") -> [String] {
        var lines: [String] = []
        var current = indent
        for word in text.split(separator: " ") {
            let empty = current.trimmingCharacters(in: .whitespaces).isEmpty
            let candidate = empty ? current + word : current + " " + word
            if candidate.count > width - continuation.count, !empty {
                lines.append(current + continuation)
                current = hanging + word
            } else {
                current = candidate
            }
        }
        lines.append(current)
        return lines
    }
}
