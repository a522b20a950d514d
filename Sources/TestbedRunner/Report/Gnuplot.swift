import Foundation

/// The one plotting tool of the testbed's reports: every plot is a gnuplot script written
/// next to its data (so it can be drawn later or elsewhere), drawn at once when gnuplot is
/// installed. When it is not, the report and stderr say so, and how to install it.
public enum Gnuplot {
    /// Where gnuplot is looked for.
    public static let candidates = ["/usr/bin/gnuplot", "/usr/local/bin/gnuplot"]
    /// What to install on Debian.
    public static let installHint = "apt install gnuplot-nox"

    public static var executable: String? { candidates.first { FileManager.default.isExecutableFile(atPath: $0) } }

    /// The note a report carries when its plots could not be drawn.
    public static var missingNote: String {
        "plots not drawn: gnuplot is not installed (\(installHint)); the .gp scripts beside the data draw them (`gnuplot rates-svg.gp`)"
    }

    /// Writes `script` as `scriptName` in `directory` and runs gnuplot on it there.
    /// - Returns: false when gnuplot is missing (the script is written all the same).
    @discardableResult
    public static func draw(_ script: String, scriptName: String, in directory: URL) throws -> Bool {
        try script.write(to: directory.appendingPathComponent(scriptName), atomically: true, encoding: .utf8)
        guard let executable else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [scriptName]
        process.currentDirectoryURL = directory
        process.standardError = FileHandle.nullDevice
        try? process.run()
        process.waitUntilExit()
        return true
    }

    /// Says once on stderr that plots are missing (reports say it in their summary).
    public static func warnMissing() {
        FileHandle.standardError.write(Data("warning: \(missingNote)\n".utf8))
    }
}
