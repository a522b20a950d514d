import NIOCore
import RSerPoolCore
import Testing

@Suite struct RateLimitTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func tokenBucketSpendsItsBurstThenRefillsAtItsRate() {
        var bucket = TokenBucket(rate: 10, burst: 3)
        var taken: [Bool] = []
        for _ in 0..<5 { taken.append(bucket.take(now: start)) }
        #expect(taken == [true, true, true, false, false])
        let half = bucket.take(now: start + .milliseconds(50))          // half a token
        let one = bucket.take(now: start + .milliseconds(100))
        let none = bucket.take(now: start + .milliseconds(100))
        #expect(!half && one && !none)
        let full = bucket.available(now: start + .seconds(60))          // never more than the burst
        let tooMuch = bucket.take(4, now: start + .seconds(60))         // nothing taken on refusal
        let still = bucket.available(now: start + .seconds(60))
        #expect(full == 3 && !tooMuch && still == 3)
    }

    @Test func tokenBucketIgnoresTimeGoingBackwards() {
        var bucket = TokenBucket(rate: 1, burst: 1)
        let first = bucket.take(now: start + .seconds(10))
        let earlier = bucket.take(now: start)
        let later = bucket.take(now: start + .seconds(11))
        #expect(first && !earlier && later)
    }

    @Test func failureLimiterBlocksAfterTooManyFailuresInTheWindow() {
        var limiter = FailureLimiter<String>(.init(maximumFailures: 3, window: .seconds(10), blockDuration: .seconds(30), maximumKeys: 100))
        var blocks: [Bool] = []
        blocks.append(limiter.recordFailure("a", now: start))
        blocks.append(limiter.recordFailure("a", now: start + .seconds(1)))
        let blockedEarly = limiter.isBlocked("a", now: start + .seconds(1))
        blocks.append(limiter.recordFailure("a", now: start + .seconds(2)))
        #expect(blocks == [false, false, true] && !blockedEarly)
        let states = [limiter.isBlocked("a", now: start + .seconds(2)), limiter.isBlocked("b", now: start + .seconds(2)),
                      limiter.isBlocked("a", now: start + .seconds(31)), limiter.isBlocked("a", now: start + .seconds(32))]
        #expect(states == [true, false, true, false])   // blocked for 30 s, then starts afresh
        // Failures spread wider than the window never block.
        var spread: [Bool] = []
        for second in stride(from: 100, to: 200, by: 6) { spread.append(limiter.recordFailure("c", now: start + .seconds(Int64(second)))) }
        #expect(!spread.contains(true))
        // A success forgets the failures so far.
        limiter.recordFailure("d", now: start)
        limiter.recordFailure("d", now: start)
        limiter.recordSuccess("d")
        let afterSuccess = limiter.recordFailure("d", now: start)
        #expect(!afterSuccess)
    }

    @Test func failureLimiterStaysBounded() {
        var limiter = FailureLimiter<Int>(.init(maximumFailures: 2, window: .seconds(10), blockDuration: .seconds(60), maximumKeys: 50))
        for key in 0..<10_000 { limiter.recordFailure(key, now: start + .milliseconds(Int64(key))) }
        #expect(limiter.count <= 50 && limiter.count > 0)
        // The newest keys are still tracked: their second failure blocks them.
        let blocked = limiter.recordFailure(9_999, now: start + .seconds(10))
        #expect(blocked)
    }

    @Test func logThrottleAdmitsOneLinePerIntervalAndCountsTheRest() {
        var throttle = LogThrottle<String>(interval: .seconds(10))
        var answers: [Int?] = []
        answers.append(throttle.admit("limit", now: start))
        answers.append(throttle.admit("limit", now: start + .seconds(1)))
        answers.append(throttle.admit("limit", now: start + .seconds(2)))
        answers.append(throttle.admit("other", now: start + .seconds(2)))
        answers.append(throttle.admit("limit", now: start + .seconds(10)))
        answers.append(throttle.admit("limit", now: start + .seconds(11)))
        #expect(answers == [0, nil, nil, 0, 2, nil])
    }
}
