"""Port-generic tools behind `tickwire echo`, `capture` and `send`.

Each tool is a Numba loop that runs for a bounded slice (so Python can service
the port's control plane and check for Ctrl-C between slices, never per packet)
plus a small Python runner.
"""
