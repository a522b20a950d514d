import CalcAppService
import Foundation
import RSerPool
import RSerPoolWire
import Testing

/// `edgepool calcapp-pe`'s settings: defaults, the configuration file, the checks.
@Suite struct CalcAppPoolElementSettingsTests {
    @Test func defaultsAreTheOnesTheHelpNames() throws {
        let configuration = try CalcAppPoolElementSettings().configuration()
        #expect(configuration.poolHandle == PoolHandle("CalcAppPool"))
        #expect(configuration.server.capacity == 1_000_000)
        #expect(configuration.server.maxJobs == 4)
        #expect(configuration.transport == .mptcp)
        #expect(configuration.delay == .zero)
    }

    @Test func aFileSetsThePEAndBadValuesAreRefusedByName() throws {
        let settings = try CalcAppPoolElementSettings.decode(Data(#"""
            {"pool": "Edge", "capacity": 2000000, "maxJobs": 8, "delay": "3ms", "identifier": "0x10", "transport": "tcp"}
            """#.utf8), source: "pe.json")
        let configuration = try settings.configuration()
        #expect(configuration.poolHandle == PoolHandle("Edge"))
        #expect(configuration.server.maxJobs == 8)
        #expect(configuration.delay == .milliseconds(3))
        #expect(configuration.identifier == PoolElementIdentifier(16))
        var bad = settings
        bad.maxJobs = 0
        #expect { try bad.configuration() } throws: { "\($0)".contains("--max-jobs (maxJobs)") }
        bad = settings
        bad.policy = "fastest"
        #expect { try bad.configuration() } throws: { "\($0)".contains("'fastest' is not a policy") }
        #expect(throws: ConfigurationError.self) { try CalcAppPoolElementSettings.decode(Data(#"{"capacityy": 1}"#.utf8), source: "f") }
    }
}
