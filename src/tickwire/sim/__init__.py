"""Exchange simulator: price-time-priority matching engine (Numba arrays), seeded synthetic
order flow, MDP 3.0-layout publisher and an order-entry gateway."""
