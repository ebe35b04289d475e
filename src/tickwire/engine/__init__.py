"""The engine: a run-to-completion loop in Numba (ports -> stack -> feed -> books ->
strategy -> risk -> order session -> transmit), the strategy API and stage timestamps."""
