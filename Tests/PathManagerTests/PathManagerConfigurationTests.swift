import PathManager
import PathManagerService
import RSerPoolWire
import Testing

@Suite struct PathManagerConfigurationTests {
    @Test func pathsParseWithTheirOptions() throws {
        let plain = try PathManagerConfiguration.Path(parsing: "wan1=10.0.1.2", endpointID: 1)
        #expect(plain.interface == "wan1" && plain.address == IPAddress("10.0.1.2") && plain.endpointID == 1 && plain.policy == PathPolicy())
        let full = try PathManagerConfiguration.Path(parsing: "wan2=2001:db8::2, backup,noprobe,id=9,port=5999,signal", endpointID: 2)
        #expect(full.policy == PathPolicy(role: .backup, probed: false) && full.endpointID == 9 && full.endpointPort == 5999 && full.extraFlags == .signal)
        let automatic = try PathManagerConfiguration.Path(parsing: "wlan0=auto,noprobe", endpointID: 3)
        #expect(automatic.automatic && automatic.address == .ipv4Any && !automatic.policy.probed)
        let automatic6 = try PathManagerConfiguration.Path(parsing: "wwan0=auto6", endpointID: 4)
        #expect(automatic6.automatic && automatic6.address == .ipv6Any && !plain.automatic)
        #expect(throws: PathManagerError("a path is IF=ADDR, IF=auto or IF=auto6, then options; 'automatic' is none of them in 'wlan0=automatic'")) {
            try PathManagerConfiguration.Path(parsing: "wlan0=automatic", endpointID: 1)
        }
        let capped = try PathManagerConfiguration.Path(parsing: "wan1=10.0.1.2,rate=8mbit", endpointID: 1)
        #expect(capped.rateCap == TokenBucketShaping(bitsPerSecond: 8_000_000))
        #expect(throws: PathManagerError("rate= wants a rate such as 8mbit, 512kbit or 1gbit in 'rate=fast'")) {
            try PathManagerConfiguration.Path(parsing: "wan1=10.0.1.2,rate=fast", endpointID: 1)
        }
        for bad in ["wan1", "=10.0.0.1", "wan1=host.example", "wan1=10.0.0.1,id=0", "wan1=10.0.0.1,port=x", "wan1=10.0.0.1,fast"] {
            #expect(throws: PathManagerError.self, "\(bad)") { try PathManagerConfiguration.Path(parsing: bad, endpointID: 1) }
        }
    }

    @Test func probeTargetsParseAndTheConfigurationValidates() throws {
        #expect(try PathManagerConfiguration.ProbeTarget(parsing: "10.0.9.1:9") == .init(address: IPAddress("10.0.9.1")!, port: 9))
        #expect(try PathManagerConfiguration.ProbeTarget(parsing: "[2001:db8::1]:9").address == IPAddress("2001:db8::1"))
        #expect(throws: PathManagerError.self) { try PathManagerConfiguration.ProbeTarget(parsing: "10.0.9.1") }
        let probed = try PathManagerConfiguration.Path(parsing: "wan1=10.0.1.2", endpointID: 1)
        #expect(throws: PathManagerError("path wan1 is probed but has no probe target: give --probe ADDR:PORT, probe=ADDR:PORT on the path, or noprobe")) {
            try PathManagerConfiguration(paths: [probed], probeTarget: nil).validate()
        }
        // A path of its own probe target needs no common one.
        let own = try PathManagerConfiguration.Path(parsing: "wan1=10.81.1.1,probe=10.81.2.1:9", endpointID: 1)
        #expect(own.probeTarget == .init(address: IPAddress("10.81.2.1")!, port: 9) && own.policy.probed)
        let ownV6 = try PathManagerConfiguration.Path(parsing: "wan2=2001:db8:2::1,probe=[2001:db8:2::2]:9,backup", endpointID: 2)
        #expect(ownV6.probeTarget?.address == IPAddress("2001:db8:2::2") && ownV6.policy.role == .backup)
        try PathManagerConfiguration(paths: [own, ownV6], probeTarget: nil).validate()
        #expect(throws: PathManagerError.self) { try PathManagerConfiguration.Path(parsing: "wan1=10.81.1.1,probe=10.81.2.1", endpointID: 1) }
        let twin = try PathManagerConfiguration.Path(parsing: "wan2=10.0.2.2,id=1,noprobe", endpointID: 2)
        #expect(throws: PathManagerError("two paths share an endpoint id")) {
            try PathManagerConfiguration(paths: [probed, twin], probeTarget: .init(address: IPAddress("10.0.9.1")!, port: 9)).validate()
        }
    }
}

@Suite struct EndpointFlagNameTests {
    @Test func flagsParseFromAndPrintAsIpMptcpsNames() throws {
        let flags = try MPTCPPathManager.EndpointFlags(parsing: "subflow, backup")
        #expect(flags == [.subflow, .backup])
        #expect(flags.nameList == ["subflow", "backup"])
        #expect(throws: EndpointFlagError(name: "sideways")) { try MPTCPPathManager.EndpointFlags(parsing: "signal,sideways") }
        #expect(throws: EndpointFlagError.self, "implicit is the kernel's, not the user's") { try MPTCPPathManager.EndpointFlags(parsing: "implicit") }
        let endpoint = MPTCPPathManager.Endpoint(id: 2, address: .v4(0xC000_0202), port: 7000, flags: [.subflow, .backup])
        #expect(endpoint.description == "id 2 192.0.2.2 port 7000 subflow,backup")
        #expect(MPTCPPathManager.Endpoint(id: 1, address: .v4(0x0A00_0001), flags: []).description == "id 1 10.0.0.1 -")
    }

    @Test func aRateCapIsATokenBucketWithTheTestbedsProportions() {
        #expect(TokenBucketShaping.parseRate("8mbit") == 8_000_000 && TokenBucketShaping.parseRate("1.5Gbit") == 1_500_000_000)
        #expect(TokenBucketShaping.parseRate("512kbit") == 512_000 && TokenBucketShaping.parseRate("64000bit") == 64_000)
        for bad in ["", "8", "mbit", "-1mbit", "0mbit", "200gbit", "0.5bit"] { #expect(TokenBucketShaping.parseRate(bad) == nil, "\(bad)") }
        let cap = TokenBucketShaping(bitsPerSecond: 8_000_000)
        // The bucket: at least two full-size packets, else 1 ms at the rate; the queue about 100 ms (66 packets).
        #expect(cap.tbfParameters == ["tbf", "rate", "8000000bit", "burst", "3028", "limit", "\(66 * 1514)"])
        #expect(TokenBucketShaping(bitsPerSecond: 1_000_000_000).burstBytes == 125_000)
        #expect(TokenBucketShaping(bitsPerSecond: 64_000).queue == 10, "never fewer than 10 packets")
        #expect(cap.description == "8 Mbit/s" && TokenBucketShaping(bitsPerSecond: 1_500_000_000).description == "1.5 Gbit/s"
                && TokenBucketShaping(bitsPerSecond: 512_000).description == "512 kbit/s")
    }

    @Test func aRootQdiscIsReadFromTcsOutput() {
        let kernels = TokenBucketShaping.RootQdisc(tcOutput: "qdisc noqueue 0: root refcnt 2 \n")
        #expect(kernels == .init(kind: "noqueue", handle: "0:") && kernels?.isDefault == true)
        let ours = TokenBucketShaping.RootQdisc(tcOutput: "qdisc tbf edc0: root refcnt 2 rate 8Mbit burst 3028b lat 151ms")
        #expect(ours == .init(kind: "tbf", handle: "edc0:") && ours?.isDefault == false)
        #expect(TokenBucketShaping.RootQdisc(tcOutput: "") == nil && TokenBucketShaping.RootQdisc(tcOutput: "Cannot find device \"x\"") == nil)
    }
}
