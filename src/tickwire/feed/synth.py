"""Synthetic MDP 3.0 traffic, encoded with tickwire's SBE codec.

For tests, the feed benchmark and the exchange simulator's first steps: a random but
well-formed stream of incremental packets (46 book updates with the full range of
update actions, 48 trade summaries), snapshots (52) of a given book, definitions (54),
security status (30) and channel resets (4). Every message is produced by
``sbe.codec.Codec.encode`` from the schema, so the bytes follow the schema's layout.
"""

from __future__ import annotations

import random

from ..sbe.codec import Codec
from .mdp3 import encode_packet

ACTIONS = ("New", "Change", "Delete", "DeleteThru", "DeleteFrom", "Overlay")
EOE = ["EndOfEvent"]


def book_entry(px, size, secid, rpt, level, action, entry_type, norders=1):
    return {"MDEntryPx": {"mantissa": px}, "MDEntrySize": size, "SecurityID": secid, "RptSeq": rpt,
            "NumberOfOrders": norders, "MDPriceLevel": level, "MDUpdateAction": action,
            "MDEntryType": entry_type}


class StreamGen:
    """Random incremental stream over ``secids``; RptSeq per instrument, MsgSeqNum from 1."""

    def __init__(self, codec: Codec, secids, depth=10, seed=0, base_px=4_500_000_000_000,
                 tick=250_000_000, implied=True, trades=True, resets=True, profile="uniform"):
        """profile "uniform": levels and actions uniformly random (worst case for the
        book, best coverage for tests). "top": most updates are Changes near the top of
        the book, levels geometric (closer to what an MBP feed carries)."""
        if profile not in ("uniform", "top"):
            raise ValueError(f"unknown profile {profile!r}")
        self.profile = profile
        self.codec = codec
        self.secids = list(secids)
        self.depth = depth
        self.rng = random.Random(seed)
        self.rpt = {s: 0 for s in self.secids}
        self.seq = 0
        self.base_px, self.tick = base_px, tick
        self.implied, self.trades, self.resets = implied, trades, resets
        self.time = 1_700_000_000_000_000_000

    def _entry(self, secid):
        r = self.rng
        self.rpt[secid] += 1
        x = r.random()
        if self.resets and x < 0.01:
            return book_entry(None, None, secid, self.rpt[secid], 0, "New", "BookReset", None)
        etype = r.choice(("Bid", "Offer", "ImpliedBid", "ImpliedOffer") if self.implied and x < 0.15
                         else ("Bid", "Offer"))
        depth = 2 if etype.startswith("Implied") else self.depth
        if self.profile == "uniform":
            action = r.choices(ACTIONS, weights=(40, 40, 25, 1, 2, 4))[0]
            level = r.randint(1, depth)
        else:
            action = r.choices(ACTIONS, weights=(20, 60, 18, 0.2, 0.5, 1.3))[0]
            level = 1
            while level < depth and r.random() < 0.45:
                level += 1
        px = self.base_px + r.randint(-40, 40) * self.tick
        return book_entry(px, r.randint(1, 500), secid, self.rpt[secid], level, action, etype, r.randint(1, 30))

    def book_message(self, n_entries, end_of_event=True):
        entries = [self._entry(self.rng.choice(self.secids)) for _ in range(n_entries)]
        self.time += self.rng.randint(1, 10_000)
        return self.codec.encode(46, {"TransactTime": self.time, "MatchEventIndicator": EOE if end_of_event else [],
                                      "NoMDEntries": entries, "NoOrderIDEntries": []})

    def trade_message(self, n_entries):
        entries = []
        for _ in range(n_entries):
            secid = self.rng.choice(self.secids)
            self.rpt[secid] += 1
            entries.append({"MDEntryPx": {"mantissa": self.base_px}, "MDEntrySize": self.rng.randint(1, 50),
                            "SecurityID": secid, "RptSeq": self.rpt[secid], "NumberOfOrders": 2,
                            "AggressorSide": self.rng.choice(("Buy", "Sell")), "MDUpdateAction": "New",
                            "MDTradeEntryID": self.rng.randint(1, 10**6)})
        orders = [{"OrderID": self.rng.randint(1, 2**63), "LastQty": 1} for _ in range(self.rng.randint(0, 3))]
        return self.codec.encode(48, {"TransactTime": self.time, "MatchEventIndicator": ["LastTradeMsg"],
                                      "NoMDEntries": entries, "NoOrderIDEntries": orders})

    def packet(self, max_msgs=3, max_entries=4):
        self.seq += 1
        msgs = []
        n = self.rng.randint(1, max_msgs)
        for i in range(n):
            if self.trades and self.rng.random() < 0.15:
                msgs.append(self.trade_message(self.rng.randint(1, 2)))
            else:
                msgs.append(self.book_message(self.rng.randint(1, max_entries), end_of_event=(i == n - 1)))
        return encode_packet(self.seq, self.time, msgs)

    def packets(self, n, **kw):
        return [self.packet(**kw) for _ in range(n)]


def snapshot_message(codec: Codec, secid, rpt, lmsp, sides, tot=1):
    """52 for one instrument. ``sides``: {entry type name: [(px, qty, norders) | None per level]}."""
    entries = []
    for etype, levels in sides.items():
        for i, lv in enumerate(levels):
            if lv is not None:
                entries.append({"MDEntryPx": {"mantissa": lv[0]}, "MDEntrySize": lv[1], "NumberOfOrders": lv[2],
                                "MDPriceLevel": i + 1, "MDEntryType": etype})
    return codec.encode(52, {"LastMsgSeqNumProcessed": lmsp, "TotNumReports": tot, "SecurityID": secid,
                             "RptSeq": rpt, "TransactTime": 0, "LastUpdateTime": 0,
                             "MDSecurityTradingStatus": "ReadyToTrade", "NoMDEntries": entries})


def definition_message(codec: Codec, secid, symbol, depth=10, implied_depth=2, min_px=250_000_000):
    return codec.encode(54, {"SecurityUpdateAction": "Add", "MDSecurityTradingStatus": "ReadyToTrade",
                             "ApplID": 310, "MarketSegmentID": 64, "SecurityGroup": "ES", "Asset": "ES",
                             "Symbol": symbol, "SecurityID": secid, "SecurityType": "FUT", "Currency": "USD",
                             "MatchAlgorithm": "F", "MinTradeVol": 1, "MaxTradeVol": 3000,
                             "MinPriceIncrement": {"mantissa": min_px}, "DisplayFactor": {"mantissa": 10**7},
                             "NoMDFeedTypes": [{"MDFeedType": "GBX", "MarketDepth": depth},
                                               {"MDFeedType": "GBI", "MarketDepth": implied_depth}]})
