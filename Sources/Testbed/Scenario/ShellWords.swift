/// Splits a command line into words the way a shell would for the simple cases: blanks
/// separate words, single quotes keep everything literally, double quotes keep blanks and
/// let a backslash escape `"` and `\`. No variables, globs or redirections: the words go to
/// the program as they are.
public enum ShellWords {
    public static func split(_ text: String, line: Int = 0) throws(TopologyError) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            switch (quote, character) {
            case ("'", "'"), ("\"", "\""):
                quote = nil
            case ("\"", "\\"), (nil, "\\"):
                escaped = true
                inWord = true
            case (nil, "'"), (nil, "\""):
                quote = character
                inWord = true
            case (nil, " "), (nil, "\t"), (nil, "\r"):
                if inWord { words.append(current) }
                current = ""
                inWord = false
            default:
                current.append(character)
                inWord = true
            }
        }
        guard quote == nil, !escaped else { throw TopologyError(line: line, "unterminated quote in '\(text)'") }
        if inWord { words.append(current) }
        return words
    }
}
