"""The model-based convergence test (issue 12): a seeded, reproducible random
run that drives a real `statecast-host` (and a relay fed through Redis) with a
generated change script while viewers of every kind watch it through TCP
proxies that cut and stall them, and checks the contract of SPEC §2 and
docs/PROTOCOL.md §4 rather than examples.

- `generator`  the change scripts (stdin lines, file replacements, viewer and host faults)
- `model`      what the host's state must be after each input (SessionInput's rules)
- `proxy`      a TCP proxy per viewer: cut (the connection drops) and stall (stops reading)
- `recorder`   the host's truth: a connection that records every state by (epoch, seq)
- `viewers`    drivers for ViewerClient, statecast-viewer, statecast.js, SSE and python-websockets
- `checks`     the contract: convergence, seqs, states the host had, resume rules
- `runner`     one seeded run; `python -m convergence` is what scripts/soak calls
"""
