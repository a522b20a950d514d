import RSerPoolCore
import RSerPoolWire
import Testing

/// A proxy PE's load readings: Prometheus text, plain numbers, the kernel's connection table
/// and metrics URLs — literal inputs, no sockets or files.
@Suite struct ProxyLoadTests {
    @Test func aPrometheusMetricIsTheSumOfItsSamplesAndOtherMetricsAreSkipped() {
        let exposition = """
        # HELP http_connections Open connections.
        # TYPE http_connections gauge
        http_connections{worker="1"} 12
        http_connections{worker="2",path="/a}b"} 30 1700000000000
        http_connections_total 999
        http_connectionsx 5
        other 7
        http_connections\t0.5
        """
        #expect(ProxyLoad.prometheusValue(of: "http_connections", in: exposition) == 42.5)
        #expect(ProxyLoad.prometheusValue(of: "other", in: exposition) == 7)
        #expect(ProxyLoad.prometheusValue(of: "missing", in: exposition) == nil)
        #expect(ProxyLoad.prometheusValue(of: "x", in: "x NaN\nx +Inf\n") == nil, "values that are no load are not summed")
        #expect(ProxyLoad.prometheusValue(of: "x", in: "x{a=\"1\" 3\n") == nil, "an unclosed label set is skipped")
        #expect(ProxyLoad.prometheusValue(of: "x", in: "x{a=\"\\\"}\"} 3\r\n") == 3, "an escaped quote inside a label value")
        #expect(ProxyLoad.plainValue(" 0.25\n") == 0.25 && ProxyLoad.plainValue("busy") == nil && ProxyLoad.plainValue("") == nil)
    }

    @Test func aLoadIsAFractionOfFullAndOnlyARealChangeIsRegistered() {
        #expect(ProxyLoad.fraction(25, full: 100) == 0.25)
        #expect(ProxyLoad.fraction(250, full: 100) == 1 && ProxyLoad.fraction(-3, full: 100) == 0)
        #expect(!ProxyLoad.isWorthUpdating(from: 0.50, to: 0.51), "1 % is below the 2 % step")
        #expect(ProxyLoad.isWorthUpdating(from: 0.50, to: 0.53))
        #expect(ProxyLoad.isWorthUpdating(from: 0.01, to: 0), "becoming idle is always told")
        #expect(ProxyLoad.isWorthUpdating(from: 0, to: 0.01))
    }

    /// Lines as /proc/net/tcp and tcp6 print them (kernel net/ipv4/tcp_ipv4.c get_tcp4_sock:
    /// "%4d: %08X:%04X %08X:%04X %02X …", the addresses' 32-bit words in host order).
    @Test func establishedConnectionsAreCountedFromTheKernelsTable() throws {
        let tcp = """
          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0
           1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0 20 4 30 10 -1
           2: 0100007F:1F90 0100007F:D432 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0 20 4 30 10 -1
           3: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1004 1 0 20 4 30 10 -1
           4: 0200007F:1F90 0100007F:D433 01 00000000:00000000 00:00000000 00000000     0        0 1005 1 0 20 4 30 10 -1
           5: 0100007F:1F90 0100007F:D434 06 00000000:00000000 03:00000F9C 00000000     0        0 0 3 0
        """
        let loopback = try #require(IPAddress("127.0.0.1"))
        #expect(ProxyLoad.establishedConnections(in: tcp, port: 8080, address: loopback) == 2,
                "the server's two accepted connections: not the listener (0A), the client's end (port D431), 127.0.0.2, TIME_WAIT (06)")
        #expect(ProxyLoad.establishedConnections(in: tcp, port: 8080, address: IPAddress("0.0.0.0")) == 3, "a wildcard server: every local address")
        #expect(ProxyLoad.establishedConnections(in: tcp, port: 8080, address: nil) == 3)
        let tcp6 = """
          sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D435 01 00000000:00000000 00:00000000 00000000     0        0 1006 1 0 20 4 30 10 -1
           1: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D436 01 00000000:00000000 00:00000000 00000000     0        0 1007 1 0 20 4 30 10 -1
        """
        #expect(ProxyLoad.establishedConnections(in: tcp6, port: 8080, address: loopback) == 1, "an IPv4 client of a dual-stack server is ::ffff:127.0.0.1")
        #expect(ProxyLoad.establishedConnections(in: tcp6, port: 8080, address: IPAddress("::1")) == 1)
        #expect(ProxyLoad.establishedConnections(in: "header only\n", port: 8080, address: loopback) == 0)
        #expect(ProxyLoad.establishedConnections(in: "h\n 0: ZZZ:1F90 0:0 01\n 1: 0100007F 0:0 01\n", port: 8080, address: loopback) == 0, "malformed lines are skipped")
    }

    @Test func aMetricsURLIsParsedOrRefused() {
        #expect(ProxyLoadSource.http(url: "http://127.0.0.1:9100/metrics", metric: "up", full: 2)
                == .http(host: "127.0.0.1", port: 9100, path: "/metrics", metric: "up", full: 2))
        #expect(ProxyLoadSource.http(url: "http://[::1]:8080", metric: nil, full: 1) == .http(host: "::1", port: 8080, path: "/", metric: nil, full: 1))
        #expect(ProxyLoadSource.http(url: "http://server.example/load?x=1", metric: nil, full: 1)
                == .http(host: "server.example", port: 80, path: "/load?x=1", metric: nil, full: 1))
        for bad in ["https://127.0.0.1/metrics", "127.0.0.1:9100", "http://:80/", "http://h:99999/", "http://h:x/", "http://[::1/", "http://h/a b"] {
            #expect(ProxyLoadSource.http(url: bad, metric: nil, full: 1) == nil, "\(bad)")
        }
        #expect(ProxyLoadSource.http(url: "http://h/", metric: "9lives", full: 1) == nil, "not a metric name")
        #expect(ProxyLoadSource.http(url: "http://h/", metric: nil, full: 0) == nil)
        #expect(ProxyLoad.isValidMetricName("node_load1") && ProxyLoad.isValidMetricName("a:b_c") && !ProxyLoad.isValidMetricName("a-b"))
        #expect("\(ProxyLoadSource.http(host: "::1", port: 80, path: "/m", metric: "x", full: 4))" == "x at http://[::1]:80/m / 4.0")
    }
}
