import Foundation
import PathManager
import PathManagerService
import RSerPool
import Testing

/// `edgepool paths run`'s settings: the configuration file, flags over it, the checks.
@Suite struct PathManagerSettingsTests {
    @Test func aFileGivesPathsProbesAndTheUserspaceModeAndFlagsWin() throws {
        let file = try PathManagerSettings.decode(Data(#"""
            {"path": ["wan1=10.0.1.2", "wan2=10.0.2.2,backup"], "probe": "10.0.9.1:9", "userspace": true,
             "probeInterval": "50ms", "probeFailures": 4}
            """#.utf8), source: "paths.json")
        var flags = PathManagerSettings()
        flags.probeFailures = 2
        let configuration = try flags.merged(over: file).configuration()
        #expect(configuration.paths.map(\.interface) == ["wan1", "wan2"])
        #expect(configuration.paths.map(\.endpointID) == [1, 2])
        #expect(configuration.paths[1].policy.role == .backup)
        #expect(configuration.kernelManager == .userspace)
        #expect(configuration.probeInterval == .milliseconds(50))
        #expect(configuration.health.probeFailuresForLoss == 2, "the flag wins over the file's 4")
    }

    @Test func badSettingsAreRefusedByName() throws {
        #expect(throws: ConfigurationError.self) { try PathManagerSettings.decode(Data(#"{"paths": []}"#.utf8), source: "f") }
        var settings = PathManagerSettings()
        settings.path = ["wan1=10.0.1.2,sometimes"]
        #expect { try settings.configuration() } throws: { "\($0)".contains("--path (path)") && "\($0)".contains("sometimes") }
        settings.path = ["wan1=10.0.1.2"]
        settings.probe = "nowhere"
        #expect { try settings.configuration() } throws: { "\($0)".contains("--probe (probe)") }
        settings.probe = nil
        #expect { try settings.configuration() } throws: { "\($0)".contains("probe target") }
        settings.path = ["wan1=10.0.1.2,noprobe"]
        settings.probeFailures = 0
        #expect { try settings.configuration() } throws: { "\($0)".contains("--probe-failures") }
    }
}

/// The daemon refuses to start without CAP_NET_ADMIN and says what to do (read from the
/// effective capability set, as /proc/self/status shows it).
@Suite struct NetworkAdministrationTests {
    @Test func theEffectiveCapabilitySetDecides() {
        let root = "Name:\tedgepool\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n"
        let nobody = "Name:\tedgepool\nCapEff:\t0000000000000000\n"
        let onlyNetAdmin = "CapEff:\t0000000000001000\n"
        #expect(PathManagerDaemon.missingNetworkAdministration(status: root) == nil)
        #expect(PathManagerDaemon.missingNetworkAdministration(status: onlyNetAdmin) == nil)
        let refusal = PathManagerDaemon.missingNetworkAdministration(status: nobody)
        #expect(refusal?.contains("CAP_NET_ADMIN") == true && refusal?.contains("setcap cap_net_admin+ep") == true)
        #expect(PathManagerDaemon.missingNetworkAdministration(status: nil) == nil, "unknown: the kernel will say")
    }
}
