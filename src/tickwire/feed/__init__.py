"""CME MDP 3.0 channel handler: packet framing, A/B arbitration, gaps, snapshot recovery."""
