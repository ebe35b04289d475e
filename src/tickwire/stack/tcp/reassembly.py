"""Out-of-order segment store for the receive side, bounded in bytes and in pieces.

Positions are 64-bit *stream offsets* (bytes since the first data byte), not
32-bit sequence numbers: the connection converts once at the edge, so the
interval arithmetic here never wraps. Stored intervals never overlap; an
arriving segment is trimmed against what is already held (the first copy wins,
which is what RFC 9293 §3.10.7.4 allows, and it stops a peer from rewriting
buffered bytes). Limits (house rule "never unbounded memory"): ``max_bytes``
(the advertised window bounds it anyway) and ``max_pieces`` (a peer sending
one-byte segments with gaps cannot make us hold thousands of objects).
"""

from __future__ import annotations

import bisect


class Reassembly:
    __slots__ = ("starts", "chunks", "held", "max_bytes", "max_pieces", "dropped")

    def __init__(self, max_bytes: int, max_pieces: int = 64):
        self.starts: list[int] = []     # sorted start offsets
        self.chunks: list[bytes] = []   # data for each start
        self.held = 0
        self.max_bytes, self.max_pieces = max_bytes, max_pieces
        self.dropped = 0                # segments refused for lack of room

    def __len__(self) -> int:
        return len(self.starts)

    def insert(self, start: int, data: bytes) -> bool:
        """Store ``data`` at stream offset ``start``; parts already held are ignored.
        Returns False (and counts it) when the limits refuse it."""
        end = start + len(data)
        pieces: list[tuple[int, bytes]] = []
        pos = start
        i = bisect.bisect_right(self.starts, start) - 1
        if i < 0:
            i = 0
        while i < len(self.starts) and pos < end:
            s = self.starts[i]
            e = s + len(self.chunks[i])
            if e <= pos:
                i += 1
                continue
            if s >= end:
                break
            if s > pos:
                pieces.append((pos, data[pos - start:s - start]))
            pos = max(pos, e)
            i += 1
        if pos < end:
            pieces.append((pos, data[pos - start:]))
        if not pieces:
            return True
        add = sum(len(d) for _, d in pieces)
        if self.held + add > self.max_bytes or len(self.starts) + len(pieces) > self.max_pieces:
            self.dropped += 1
            return False
        for s, d in pieces:
            j = bisect.bisect_left(self.starts, s)
            self.starts.insert(j, s)
            self.chunks.insert(j, d)
        self.held += add
        return True

    def pop_ready(self, offset: int) -> bytes:
        """Remove and return the bytes contiguous from ``offset`` (the next expected
        byte). Pieces entirely before ``offset`` are discarded."""
        out = []
        while self.starts and self.starts[0] <= offset:
            s = self.starts.pop(0)
            d = self.chunks.pop(0)
            self.held -= len(d)
            e = s + len(d)
            if e > offset:
                out.append(d[offset - s:])
                offset = e
        return b"".join(out)

    def blocks(self, limit: int = 3) -> list[tuple[int, int]]:
        """Up to ``limit`` [start, end) stream ranges held, merged, highest first
        (RFC 2018 §4 wants the most recent block first; highest is a fair proxy)."""
        merged: list[list[int]] = []
        for s, d in zip(self.starts, self.chunks):
            if merged and merged[-1][1] == s:
                merged[-1][1] = s + len(d)
            else:
                merged.append([s, s + len(d)])
        return [(s, e) for s, e in reversed(merged[-limit:])]

    def clear(self) -> None:
        self.starts.clear()
        self.chunks.clear()
        self.held = 0
