"""Benchmarks of mcpgate, each one command printing its figures as ratios against a baseline
measured in the same run (DESIGN.md, "Performance facts measured here"; docs/performance.md).

    python -m bench.gateway      mcpgate vs FastMCP, a floor proxy and the upstream itself
    python -m bench.auth         each outbound auth method vs none, in one gateway
    python -m bench.controller   the operator: N McpServers at once against the API emulator
    python -m bench.render       plan_server for 10, 100 and 1000 tools
    python -m bench.faults       the gateway beside faults, the operator under API faults

Every command takes `--smoke` (a few seconds, what tests/bench runs) and `--json PATH`.
The operator benchmark is `bench.controller`, not `bench.operator`: a file named
`operator.py` shadows the standard library's module as soon as its folder is on sys.path.
"""
