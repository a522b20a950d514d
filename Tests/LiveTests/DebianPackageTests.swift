import Foundation
import ProcessSupport
import Testing

/// The Debian package scripts/package builds (scripts/test builds it into .build/package
/// before the tests: a build inside `swift test` would wait for the build directory's lock)
/// installs into a throw-away root with dpkg and works there: the binary (no Swift toolchain
/// needed), man pages, completions, units.
@Suite(.serialized, .tags(.live), .timeLimit(.minutes(5))) struct DebianPackageTests {
    static var package: String? {
        let directory = packageRoot.appendingPathComponent(".build/package").path
        return (try? FileManager.default.contentsOfDirectory(atPath: directory))?.filter { $0.hasSuffix(".deb") }.sorted().last.map { "\(directory)/\($0)" }
    }

    static var unavailableReason: String? {
        missingTool("/usr/bin/dpkg-deb", package: "dpkg") ?? missingTool("/usr/bin/man", package: "man-db")
            ?? missingTool("/usr/bin/systemd-analyze", package: "systemd")
            ?? (package == nil ? "no package in .build/package: run scripts/package .build/package (scripts/test does)" : nil)
    }

    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func thePackageInstallsIntoAThrowAwayRootAndWorksThere() async throws {
        let root = temporaryFile("root")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let deb = try #require(Self.package)
        let info = try await runCommand("/usr/bin/dpkg-deb", ["--info", deb])
        #expect(info.output.contains { $0.contains("Package: edgepool") }, "\(info.output)")

        // A dpkg database of its own: a real installation, into a directory.
        for directory in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(directory)", withIntermediateDirectories: true)
        }
        FileManager.default.createFile(atPath: "\(root)/var/lib/dpkg/status", contents: nil)
        let install = try await runCommand("/usr/bin/dpkg", ["--root=\(root)", "--force-depends", "--force-not-root", "--install", deb])
        #expect(install.status == 0, "\(install.output.suffix(5))")
        let listed = try await runCommand("/usr/bin/dpkg", ["--root=\(root)", "-L", "edgepool"])
        for path in ["/usr/bin/edgepool", "/usr/share/man/man1/edgepool.1.gz", "/usr/share/man/man1/edgepool.registrar.1.gz",
                     "/usr/share/bash-completion/completions/edgepool", "/usr/share/zsh/vendor-completions/_edgepool",
                     "/lib/systemd/system/edgepool-registrar.service", "/usr/share/edgepool/grafana/edgepool.json"] {
            #expect(listed.output.contains(path), "\(path) installed")
        }
        // The installed binary runs without the toolchain's libraries (static standard library).
        let version = try await runCommand("/usr/bin/env", ["-i", "\(root)/usr/bin/edgepool", "--version"])
        #expect(version.status == 0 && version.output.last == "0.1.0", "\(version.output)")
        let ldd = try await runCommand("/usr/bin/ldd", ["\(root)/usr/bin/edgepool"])
        #expect(!ldd.output.contains { $0.contains("swift") || $0.contains("Foundation") }, "\(ldd.output)")
        let page = try await runCommand("/bin/sh", ["-c", "MANWIDTH=80 /usr/bin/man -l \(root)/usr/share/man/man1/edgepool.registrar.1.gz 2>&1 | head -20"])
        #expect(page.output.contains { $0.contains("--tls-certificate") || $0.contains("registrar") }, "\(page.output)")
        let completion = try await runCommand("/bin/bash", ["-n", "\(root)/usr/share/bash-completion/completions/edgepool"])
        #expect(completion.status == 0, "\(completion.output)")
        // The installed units verify against the installed binary.
        let units = try FileManager.default.contentsOfDirectory(atPath: "\(root)/lib/systemd/system").sorted()
        let directory = temporaryFile("installed-units")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for unit in units {
            try String(contentsOfFile: "\(root)/lib/systemd/system/\(unit)", encoding: .utf8)
                .replacingOccurrences(of: "/usr/bin/edgepool", with: "\(root)/usr/bin/edgepool").write(toFile: "\(directory)/\(unit)", atomically: true, encoding: .utf8)
        }
        let verify = try await runCommand("/usr/bin/systemd-analyze", ["verify", "--man=no"] + units.map { "\(directory)/\($0)" })
        #expect(verify.status == 0 && verify.output.isEmpty, "\(verify.output)")
    }
}
