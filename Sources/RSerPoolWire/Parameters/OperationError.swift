import NIOCore

/// An Operation Error cause code (RFC 5354 §3.12). Open struct: unknown codes are kept.
public struct ErrorCauseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let unspecified = Self(0)
    public static let unrecognizedParameter = Self(1)
    public static let unrecognizedMessage = Self(2)
    public static let invalidValues = Self(3)
    public static let nonUniquePoolElementIdentifier = Self(4)
    public static let inconsistentPoolingPolicy = Self(5)
    public static let lackOfResources = Self(6)
    public static let inconsistentTransportType = Self(7)
    public static let inconsistentDataControlConfiguration = Self(8)
    public static let unknownPoolHandle = Self(9)
    public static let rejectedDueToSecurity = Self(10)

    public var description: String {
        switch self {
        case .unspecified: "unspecified error"
        case .unrecognizedParameter: "unrecognized parameter"
        case .unrecognizedMessage: "unrecognized message"
        case .invalidValues: "invalid values"
        case .nonUniquePoolElementIdentifier: "non-unique PE identifier"
        case .inconsistentPoolingPolicy: "inconsistent pooling policy"
        case .lackOfResources: "lack of resources"
        case .inconsistentTransportType: "inconsistent transport type"
        case .inconsistentDataControlConfiguration: "inconsistent data/control configuration"
        case .unknownPoolHandle: "unknown pool handle"
        case .rejectedDueToSecurity: "rejected for security reasons"
        default: "error cause \(rawValue)"
        }
    }
}

/// One error cause: code, and cause-specific information (for "unrecognized parameter" the
/// parameter, for "unrecognized message" the message).
public struct ErrorCause: Hashable, Sendable, CustomStringConvertible {
    public var code: ErrorCauseCode
    public var information: [UInt8]
    public init(_ code: ErrorCauseCode, information: [UInt8] = []) {
        self.code = code
        self.information = information
    }
    public var description: String { code.description }
}

/// The Operation Error parameter (RFC 5354 §3.12): one or more error causes.
public struct OperationError: Hashable, Sendable, CustomStringConvertible {
    public var causes: [ErrorCause]
    public init(causes: [ErrorCause]) { self.causes = causes }
    public init(_ code: ErrorCauseCode, information: [UInt8] = []) { self.causes = [ErrorCause(code, information: information)] }

    /// The first cause's code (what most callers need).
    public var code: ErrorCauseCode { causes.first?.code ?? .unspecified }
    public var description: String { causes.map(\.description).joined(separator: ", ") }

    /// The most causes one Operation Error may carry.
    public static let maximumCauses = 16
}

extension ByteBuffer {
    public mutating func writeOperationErrorParameter(_ error: OperationError) {
        writeTLV(type: ParameterType.operationError.rawValue) { buffer in
            for cause in error.causes {
                let start = buffer.writerIndex
                buffer.writeInteger(cause.code.rawValue)
                buffer.writeInteger(UInt16(4 + cause.information.count))
                buffer.writeBytes(cause.information)
                buffer.writePadding(since: start)
            }
        }
    }
}

extension OperationError {
    static func decode(_ raw: RawParameter) throws(RSerPoolWireError) -> OperationError {
        var value = raw.value
        var causes: [ErrorCause] = []
        while value.readableBytes > 0 {
            guard let code = value.readInteger(as: UInt16.self), let length = value.readInteger(as: UInt16.self) else {
                throw RSerPoolWireError(.truncated, "error cause header ends early", parameterType: raw.type.rawValue, bytes: raw.whole)
            }
            guard length >= 4, Int(length) - 4 <= value.readableBytes else {
                throw RSerPoolWireError(.invalidLength, "error cause declares length \(length)", parameterType: raw.type.rawValue, bytes: raw.whole)
            }
            let information = value.readBytes(length: Int(length) - 4)!
            let padding = min(paddedLength(Int(length)) - Int(length), value.readableBytes)
            value.moveReaderIndex(forwardBy: padding)
            causes.append(ErrorCause(ErrorCauseCode(code), information: information))
            guard causes.count <= maximumCauses else {
                throw RSerPoolWireError(.tooManyItems, "more than \(maximumCauses) error causes", parameterType: raw.type.rawValue, bytes: raw.whole)
            }
        }
        guard !causes.isEmpty else {
            throw RSerPoolWireError(.invalidValue, "Operation Error without a cause", parameterType: raw.type.rawValue, bytes: raw.whole)
        }
        return OperationError(causes: causes)
    }
}
