import Testing
import RSerPoolCore

/// A proxy PE's hysteresis: the legacy server joins after 2 passed checks, leaves after 3 failed.
@Suite struct ProxyHealthTests {
    @Test func thresholdsDecideAndASingleBlipChangesNothing() {
        var health = ProxyHealth(failuresForDown: 3, successesForUp: 2)
        #expect(health.checked(true) == nil)
        #expect(health.checked(true) == .up)
        #expect(health.isUp)
        #expect(health.checked(false) == nil)
        #expect(health.checked(true) == nil, "one failed check between passes is a blip")
        #expect(health.checked(false) == nil)
        #expect(health.checked(false) == nil)
        #expect(health.checked(false) == .down)
        #expect(!health.isUp)
        #expect(health.checked(false) == nil, "already down")
        #expect(health.checked(true) == nil)
        #expect(health.checked(false) == nil, "the success streak starts again")
        #expect(health.checked(true) == nil)
        #expect(health.checked(true) == .up)
    }
}
