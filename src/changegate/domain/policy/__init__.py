"""Policy gates: rules over a change set (all documents of a change), waivers, reports.

Pure, like the rest of the domain: the adapters read files into `Document`s, the rules look at
them, the engine applies waivers and counts. Outside tools a rule may use (promtool, cosign)
arrive through the `Tools` port in the check context. docs/policy.md explains it all.
"""
