import NIOCore

/// The ones'-complement checksum RFC 5353 §2.1.5 uses over the PEs a registrar owns: a 16-bit
/// Internet-checksum-style sum over the pool handle bytes followed by the PE identifier,
/// summed over all PEs, folded and complemented.
public struct HandlespaceChecksum: Hashable, Sendable {
    /// The unfolded running sum (so PEs can be added and removed in O(1)).
    public private(set) var sum: UInt64 = 0
    public init() {}

    /// The sum contributed by one PE.
    public static func contribution(handle: PoolHandle, identifier: PoolElementIdentifier) -> UInt64 {
        var sum: UInt64 = 0
        var bytes = handle.bytes
        bytes.append(contentsOf: [UInt8(identifier.rawValue >> 24), UInt8(truncatingIfNeeded: identifier.rawValue >> 16),
                                  UInt8(truncatingIfNeeded: identifier.rawValue >> 8), UInt8(truncatingIfNeeded: identifier.rawValue)])
        var index = 0
        while index + 1 < bytes.count {
            sum += UInt64(bytes[index]) << 8 | UInt64(bytes[index + 1])
            index += 2
        }
        if index < bytes.count { sum += UInt64(bytes[index]) << 8 }
        return sum
    }

    public mutating func add(handle: PoolHandle, identifier: PoolElementIdentifier) {
        sum &+= Self.contribution(handle: handle, identifier: identifier)
    }
    public mutating func remove(handle: PoolHandle, identifier: PoolElementIdentifier) {
        sum &-= Self.contribution(handle: handle, identifier: identifier)
    }

    /// The folded, complemented 16-bit value carried in the PE Checksum parameter.
    public var value: UInt16 {
        var folded = sum
        while folded >> 16 != 0 { folded = (folded & 0xFFFF) + (folded >> 16) }
        return ~UInt16(folded)
    }
}
