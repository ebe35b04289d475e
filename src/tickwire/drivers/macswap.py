"""Swap an Ethernet frame's destination and source MAC addresses in place: testpmd's
``macswap`` forwarding mode. Used by `tickwire echo` (tools/echo.py) on any port and by
memif's one-copy server reflect (memif/reflect.py), which swaps in the S2C buffer."""

from __future__ import annotations

from numba.extending import register_jitable

from ..mem.atomics import load_u16, load_u32, store_u16, store_u32


@register_jitable
def swap_macs(data, start):
    """Swap the two 6-byte MAC addresses at ``data[start:start+12]`` in place (the
    caller has checked that the frame holds at least 12 bytes)."""
    d0 = load_u32(data, start)
    d1 = load_u16(data, start + 4)
    store_u32(data, start, load_u32(data, start + 6))
    store_u16(data, start + 4, load_u16(data, start + 10))
    store_u32(data, start + 6, d0)
    store_u16(data, start + 10, d1)
