import NIOCore
import RSerPoolCore
import RSerPoolWire

/// Why an `AssociationReader` closed its association (sent up the pipeline as a user event
/// before the close, for logs and metrics).
public enum AssociationGuardEvent: Sendable, Hashable {
    /// A message was started and not finished within the partial-message timeout.
    case partialMessageTimeout(bufferedBytes: Int)
    /// Replies stayed queued past the not-reading timeout: the peer does not read.
    case notReading(queuedBytes: Int)
    /// Nothing arrived for the idle timeout (the registrar decides whether to close).
    case idle

    public var reason: String {
        switch self {
        case .partialMessageTimeout: "partial_message_timeout"
        case .notReading: "not_reading"
        case .idle: "idle"
        }
    }
}

/// Reads whole ASAP or ENRP messages off one association under `AssociationLimits`: the
/// registrar's replacement for a plain stream decoder, which would decode everything that
/// arrives and queue every reply, however fast a peer sends and however little it reads.
///
/// - It handles messages only while the channel is writable, so what waits for a peer that
///   does not read is bounded by the write buffer's high-water mark plus one message's replies;
///   reads from the socket stop meanwhile (TCP backpressure), so what waits inbound is at most
///   one message plus one read.
/// - At most `messagesPerTurn` messages, then the rest waits for a later turn of the event
///   loop, so one flooding association cannot starve the others; at most `messageRate` a
///   second per association.
/// - A message begun and not finished within `partialMessageTimeout`, or replies unread for
///   `notReadingTimeout`, close the association; `idleTimeout` without a message raises
///   `AssociationGuardEvent.idle` for the owner to decide.
///
/// Frames and decodes like `RSerPoolStreamDecoder`: an impossible header is an error
/// (`errorCaught`) that ends the stream; a whole frame with a bad body goes up as `.malformed`.
public final class AssociationReader<Message: Sendable>: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = RSerPoolInbound<Message>
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let limits: AssociationLimits
    private let wireLimits: WireLimits
    private let decodeFrame: @Sendable (ByteBuffer, WireLimits) throws(RSerPoolWireError) -> Message
    private var buffer = ByteBuffer()
    private var budget: TokenBucket?
    /// The buffer holds no whole message: reading from the socket may go on.
    private var needsMoreData = true
    /// The pipeline asked for a read that is held back until reading may go on.
    private var readHeldBack = false
    private var continuationScheduled = false
    private var partialTimer: Scheduled<Void>?
    private var notReadingTimer: Scheduled<Void>?
    private var idleTimer: Scheduled<Void>?
    private var lastMessage = NIODeadline.now()
    private var failed = false
    /// Reply bytes written since the last message was handed up (counted in `write`).
    private var replyBytes = 0

    public init(limits: AssociationLimits, wireLimits: WireLimits,
                decodeFrame: @escaping @Sendable (ByteBuffer, WireLimits) throws(RSerPoolWireError) -> Message) {
        self.limits = limits
        self.wireLimits = wireLimits
        self.decodeFrame = decodeFrame
        if limits.messageRate > 0 { budget = TokenBucket(rate: limits.messageRate, burst: limits.messageBurst) }
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        let options = context.channel.syncOptions
        try? options?.setOption(.writeBufferWaterMark, value: .init(low: limits.writeBufferLow, high: limits.writeBufferHigh))
        try? options?.setOption(.socketOption(.so_sndbuf), value: SocketOptionValue(limits.socketSendBuffer))
        try? options?.setOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(limits.socketReceiveBuffer))
        lastMessage = context.eventLoop.now
        armIdleTimer(context: context, after: limits.idleTimeout)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        partialTimer?.cancel()
        notReadingTimer?.cancel()
        idleTimer?.cancel()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer.writeBuffer(&bytes)
        process(context: context)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        partialTimer?.cancel()
        notReadingTimer?.cancel()
        idleTimer?.cancel()
        context.fireChannelInactive()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        replyBytes += unwrapOutboundIn(data).readableBytes
        context.write(data, promise: promise)
    }

    public func read(context: ChannelHandlerContext) {
        if mayRead(context: context) {
            context.read()
        } else {
            readHeldBack = true
        }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            notReadingTimer?.cancel()
            notReadingTimer = nil
            process(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func mayRead(context: ChannelHandlerContext) -> Bool {
        needsMoreData && context.channel.isWritable && !failed
    }

    /// Handles the whole messages buffered, within the turn's and the second's budget.
    private func process(context: ChannelHandlerContext) {
        guard !failed else { return }
        var handled = 0
        var turnBytes = 0
        while context.channel.isActive {
            guard context.channel.isWritable else {
                armNotReadingTimer(context: context)
                break
            }
            if handled >= limits.messagesPerTurn || turnBytes >= limits.replyBytesPerTurn {
                scheduleContinuation(context: context, after: nil)
                break
            }
            let now = context.eventLoop.now
            if var bucket = budget {
                let available = bucket.available(now: now)
                budget = bucket
                if available < 1 {
                    // A whole message waiting? Then wait for a token; else read on.
                    let wholeMessageWaiting = ((try? RSerPoolFraming.peekFrameLength(buffer, limits: wireLimits)) ?? nil) != nil
                    if wholeMessageWaiting {
                        needsMoreData = false
                        // Until the bucket holds a whole unit again (debts from large replies included).
                        scheduleContinuation(context: context, after: .nanoseconds(Int64((1 - available) * 1e9 / limits.messageRate) + 1))
                        return
                    }
                    needsMoreData = true
                    break
                }
            }
            let frame: ByteBuffer?
            do {
                frame = try RSerPoolFraming.nextFrame(from: &buffer, limits: wireLimits)
            } catch {
                failed = true
                context.fireErrorCaught(error)
                return
            }
            guard let frame else {
                needsMoreData = true
                break
            }
            needsMoreData = false
            handled += 1
            lastMessage = now
            replyBytes = 0
            do {
                context.fireChannelRead(wrapInboundOut(.message(try decodeFrame(frame, wireLimits))))
            } catch {
                context.fireChannelRead(wrapInboundOut(.malformed(error)))
            }
            // The replies are written by now (the registrar answers on the same turn): charge
            // the message and its answers' size.
            turnBytes += replyBytes
            budget?.spend(1 + Double(replyBytes / limits.replyBytesPerUnit), now: now)
        }
        if buffer.readableBytes == 0 {
            buffer.clear()
        } else if buffer.readerIndex > 65_536 {
            buffer.discardReadBytes()
        }
        updatePartialTimer(context: context)
        if readHeldBack, mayRead(context: context) {
            readHeldBack = false
            context.read()
        }
    }

    private func scheduleContinuation(context: ChannelHandlerContext, after delay: TimeAmount?) {
        needsMoreData = false
        guard !continuationScheduled else { return }
        continuationScheduled = true
        let loop = context.eventLoop.assumeIsolated()
        let resume = { [self] in
            continuationScheduled = false
            process(context: context)
        }
        if let delay {
            loop.scheduleTask(in: delay, resume)
        } else {
            loop.execute(resume)
        }
    }

    private func updatePartialTimer(context: ChannelHandlerContext) {
        guard needsMoreData, buffer.readableBytes > 0 else {
            partialTimer?.cancel()
            partialTimer = nil
            return
        }
        guard partialTimer == nil else { return }
        partialTimer = context.eventLoop.assumeIsolated().scheduleTask(in: limits.partialMessageTimeout) { [self] in
            partialTimer = nil
            guard needsMoreData, buffer.readableBytes > 0 else { return }
            close(context: context, because: .partialMessageTimeout(bufferedBytes: buffer.readableBytes))
        }
    }

    private func armNotReadingTimer(context: ChannelHandlerContext) {
        guard notReadingTimer == nil else { return }
        notReadingTimer = context.eventLoop.assumeIsolated().scheduleTask(in: limits.notReadingTimeout) { [self] in
            notReadingTimer = nil
            guard !context.channel.isWritable else { return }
            close(context: context, because: .notReading(queuedBytes: limits.writeBufferHigh))
        }
    }

    private func armIdleTimer(context: ChannelHandlerContext, after delay: TimeAmount) {
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            let silent = context.eventLoop.now - lastMessage
            if silent >= limits.idleTimeout {
                context.fireUserInboundEventTriggered(AssociationGuardEvent.idle)
                lastMessage = context.eventLoop.now   // asked once per idle period
                armIdleTimer(context: context, after: limits.idleTimeout)
            } else {
                armIdleTimer(context: context, after: limits.idleTimeout - silent)
            }
        }
    }

    private func close(context: ChannelHandlerContext, because event: AssociationGuardEvent) {
        failed = true
        context.fireUserInboundEventTriggered(event)
        context.close(promise: nil)
    }
}
