import Foundation
import ProcessSupport
import Testing

@Suite struct ResidentMemoryTests {
    @Test func vmRSSIsReadFromAStatusText() {
        let status = "Name:\tedgepool\nVmPeak:\t  200000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n"
        #expect(ResidentMemory.parseStatus(status) == 12345 * 1024)
        #expect(ResidentMemory.parseStatus("Name:\tkthreadd\n") == nil)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/status"), "needs /proc (Linux)"))
    func thisProcessHasAResidentSet() throws {
        let bytes = try #require(ResidentMemory.bytes(of: getpid()))
        #expect(bytes > 1_000_000)
    }
}
