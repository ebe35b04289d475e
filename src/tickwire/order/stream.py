"""The reassembly buffer of an order-entry byte stream (SOFH-framed SBE over TCP): the two
moves every reader makes around its own frame loop (the engine's session, the venue's
gateway, the simulator's end-to-end stamper; each reacts to a frame differently). Bytes
are taken in pieces that fit, so a partial frame plus a whole receive is never cut: a cut
loses the frame boundary for good (a byte stream cannot be resynchronised)."""

from __future__ import annotations

from numba import njit

from ..mem.atomics import memcpy


@njit(cache=True, _nrt=False, inline="always")
def stream_append(dst, dlen, buf, off, n):
    """Copy as much of ``buf[off:off + n]`` as fits after ``dst[:dlen]``; returns how much."""
    k = min(n, dst.shape[0] - dlen)
    if k > 0:
        memcpy(dst, dlen, buf, off, k)
    return k


@njit(cache=True, _nrt=False, inline="always")
def stream_keep_tail(dst, pos, dlen):
    """Move the partial frame ``dst[pos:dlen]`` to the front (a forward copy: the two
    ranges may overlap); returns its length, the buffer's new fill."""
    if pos > 0:
        for j in range(dlen - pos):
            dst[j] = dst[pos + j]
    return dlen - pos
