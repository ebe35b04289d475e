"""wire.bytes: big-endian field access agrees with Python's int.to_bytes/from_bytes, on
contiguous buffers (one unaligned access + byte swap) and on strided views (byte-wise),
at every offset parity, and leaves the neighbouring bytes alone."""

import numpy as np
from hypothesis import given, strategies as st

from tickwire.wire.bytes import rd16, rd32, rd48, wr16, wr32, wr48

WIDTHS = {2: (rd16, wr16), 4: (rd32, wr32), 6: (rd48, wr48)}


def _buffers(n, step):
    base = np.frombuffer(np.random.default_rng(n).bytes(n * step), np.uint8).copy()
    return base[::step] if step > 1 else base


@given(width=st.sampled_from(sorted(WIDTHS)), off=st.integers(0, 25), step=st.sampled_from([1, 2, 3]),
       value=st.integers(0, (1 << 48) - 1))
def test_round_trip_against_python(width, off, step, value):
    rd, wr = WIDTHS[width]
    buf = _buffers(32, step)
    before = bytes(buf)
    v = value & ((1 << (8 * width)) - 1)
    wr(buf, off, v)
    after = bytes(buf)
    assert after[off:off + width] == v.to_bytes(width, "big")
    assert after[:off] == before[:off] and after[off + width:] == before[off + width:]
    assert rd(buf, off) == int.from_bytes(after[off:off + width], "big")


def test_store_keeps_only_the_low_bits():
    buf = np.zeros(8, np.uint8)
    wr16(buf, 1, -1)                  # a negative int64: its low 16 bits, not a sign-extended store
    wr32(buf, 3, 0x1_2233_4455)       # wider than 32 bits: the top is dropped, as byte-wise did
    assert bytes(buf) == bytes([0, 0xFF, 0xFF, 0x22, 0x33, 0x44, 0x55, 0])


def test_store_into_a_read_only_array_is_refused():
    import pytest
    from numba.core.errors import TypingError
    ro = np.frombuffer(bytes(8), np.uint8)
    with pytest.raises(TypingError):
        wr16(ro, 0, 1)
    assert rd16(ro, 0) == 0          # reading it stays allowed
