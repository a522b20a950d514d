import ArgumentParser

@main
struct EdgePool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgepool",
        abstract: "Server pools at the mobile edge: RSerPool registrars, pool elements, pool users, the offloading experiment, and an MPTCP gateway.",
        discussion: HelpText.reflow("""
        A pool registrar keeps the handlespace: pools of servers (pool
        elements, PEs) under a pool handle. PEs register and are watched by
        keep-alives; pool users resolve the handle, pick a PE by the pool's
        policy, and fail over when one dies. Registrars replicate the
        handlespace among themselves (ENRP) and take over a dead peer's PEs.
        ASAP and ENRP run over MPTCP (falling back to TCP). The gateway
        converts between MPTCP and TCP (SOCKS5, HTTP proxy, reverse proxy
        with backends from a pool, hybrid-access pair) and records per
        connection whether MPTCP was really used.

        Everything in one process:
          edgepool demo                  the offloading scenario, live
          edgepool demo echo             a pool of echo servers, one crashes
          edgepool simulate              the whole offloading sweep, simulated

        On three terminals:
          edgepool registrar --listen 127.0.0.1:3863
          edgepool pe --pool EchoPool --service echo --policy lu
          edgepool pu --pool EchoPool --requests 10

        MPTCP gateway:
          edgepool gateway socks --listen 127.0.0.1:1080 --connection-log conn.jsonl
          edgepool gateway stats conn.jsonl
        """),
        version: "0.1.0",
        subcommands: [DemoCommand.self, RegistrarCommand.self, PoolElementCommand.self, ResolveCommand.self,
                      PoolUserCommand.self, HandlespaceCommand.self, SimulateCommand.self, OffloadCommand.self, CalcAppPECommand.self, CalcAppPUCommand.self, GatewayCommand.self, PathsCommand.self, TestbedCommand.self, BenchCommand.self]
    )
}
