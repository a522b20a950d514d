import ArgumentParser

@main
struct EdgePool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgepool",
        abstract: "Reliable server pooling (RSerPool) for the mobile edge: registrars, pool elements, pool users.",
        discussion: """
        A pool registrar (PR) keeps the handlespace: pools of servers (pool elements, PEs) under
        a pool handle. PEs register with a PR and are monitored by keep-alives; pool users (PUs)
        resolve the handle, pick a PE by the pool's policy and fail over when one dies.
        ASAP runs over MPTCP (falling back to TCP) on port 3863.

        Try it all in one process:        edgepool demo
        Or on three terminals:            edgepool registrar --listen 127.0.0.1:3863
                                          edgepool pe --pool EchoPool --service echo --policy lu
                                          edgepool pu --pool EchoPool --requests 10
        """,
        version: "0.1.0",
        subcommands: [DemoCommand.self, RegistrarCommand.self, PoolElementCommand.self, ResolveCommand.self,
                      PoolUserCommand.self, HandlespaceCommand.self, SimulateCommand.self, OffloadCommand.self, CalcAppPECommand.self, CalcAppPUCommand.self, BenchCommand.self]
    )
}
