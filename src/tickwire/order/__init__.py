"""Order entry: the order state machine (reconciled with execution reports), pre-trade
risk checks (O(1), Numba) with every rejection counted by reason, the kill switch, and
the FIXP order-entry session with its SBE schema (``schemas/``)."""
