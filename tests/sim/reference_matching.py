"""A deliberately naive pure-Python price-time-priority matching engine: dicts of price ->
list of orders, linear scans everywhere. The Numba engine must produce the same event
stream (tickwire.sim.matching docstring defines the order of events)."""

from tickwire.sim.matching import (BUY, EV_ACK, EV_CANCEL_REJECT, EV_CANCELED, EV_FILL, EV_LEVEL, EV_REJECTED,
                                   EV_REPLACED, EV_TRADE, OID_BITS, RJ_BAD_INSTR, RJ_BAD_PRICE, RJ_BAD_QTY,
                                   RJ_BAD_SIDE, RJ_NOT_OWNER, RJ_UNKNOWN, SELL, T_DAY, T_MARKET)


class RefBook:
    def __init__(self, instruments, n_levels=4096):
        self.inst = [(base, tick) for base, tick in instruments]
        self.n_levels = n_levels
        self.sides = [[{}, {}] for _ in instruments]    # price -> [order dicts]
        self.orders = {}                                # oid -> order
        self.ev = []
        self.gen = 1
        self.free = None

    def _ok_price(self, i, price):
        base, tick = self.inst[i]
        return price > 0 and price % tick == 0 and 0 <= price // tick - base // tick < self.n_levels

    def _level(self, i, sd, price):
        lv = self.sides[i][sd].get(price, [])
        self.ev.append((EV_LEVEL, 0, 0, 0, i, sd + 1, price, sum(o["qty"] - o["cum"] for o in lv), 0, len(lv)))

    def _match(self, i, side, price, qty, owner, clordid, oid, market):
        osd = 2 - side
        book = self.sides[i][osd]
        while qty > 0:
            prices = [p for p, lv in book.items() if lv]
            if not prices:
                break
            best = max(prices) if osd == 0 else min(prices)
            if not market and ((side == BUY and price < best) or (side == SELL and price > best)):
                break
            lv = book[best]
            while qty > 0 and lv:
                m = lv[0]
                q = min(qty, m["qty"] - m["cum"])
                m["cum"] += q
                qty -= q
                ml = m["qty"] - m["cum"]
                self.ev.append((EV_FILL, m["owner"], m["clordid"], m["oid"], i, m["side"], best, q, ml, 0))
                self.ev.append((EV_FILL, owner, clordid, oid, i, side, best, q, qty, 0))
                self.ev.append((EV_TRADE, 0, 0, 0, i, side, best, q, 0, 0))
                if ml == 0:
                    lv.pop(0)
                    del self.orders[m["oid"]]
            self._level(i, osd, best)
        return qty

    def _rest(self, o):
        self.sides[o["instr"]][o["side"] - 1].setdefault(o["price"], []).append(o)
        self.orders[o["oid"]] = o
        self._level(o["instr"], o["side"] - 1, o["price"])

    def new_order(self, i, side, price, qty, tif, owner, clordid, node):
        """``node``: the node index the Numba engine will use (its free-list order is an
        implementation detail; the test passes it so ids match)."""
        def rej(code):
            self.ev.append((EV_REJECTED, owner, clordid, 0, i, side, price, qty, code, 0))
            return 0
        if not 0 <= i < len(self.inst):
            return rej(RJ_BAD_INSTR)
        if side not in (BUY, SELL):
            return rej(RJ_BAD_SIDE)
        if qty <= 0 or qty > 10**9:
            return rej(RJ_BAD_QTY)
        market = tif == T_MARKET
        if not market and not self._ok_price(i, price):
            return rej(RJ_BAD_PRICE)
        oid = (self.gen << OID_BITS) | node
        self.gen += 1
        self.ev.append((EV_ACK, owner, clordid, oid, i, side, price, qty, qty, 0))
        left = self._match(i, side, price, qty, owner, clordid, oid, market)
        if left > 0 and tif == T_DAY:
            self._rest(dict(oid=oid, owner=owner, clordid=clordid, instr=i, side=side, price=price, qty=qty,
                            cum=qty - left))
        elif left > 0:
            self.ev.append((EV_CANCELED, owner, clordid, oid, i, side, price, left, 0, 0))
        return oid

    def _lookup(self, oid, owner):
        o = self.orders.get(oid)
        if o is None:
            return None, RJ_UNKNOWN
        if o["owner"] != owner:
            return None, RJ_NOT_OWNER
        return o, 0

    def cancel_order(self, oid, owner, clordid):
        o, code = self._lookup(oid, owner)
        if o is None:
            self.ev.append((EV_CANCEL_REJECT, owner, clordid, oid, -1, 0, 0, 0, code, 0))
            return False
        lv = self.sides[o["instr"]][o["side"] - 1][o["price"]]
        lv.remove(o)
        del self.orders[oid]
        self.ev.append((EV_CANCELED, owner, o["clordid"], oid, o["instr"], o["side"], o["price"],
                        o["qty"] - o["cum"], 0, 0))
        self._level(o["instr"], o["side"] - 1, o["price"])
        return True

    def replace_order(self, oid, owner, clordid, price, qty):
        o, code = self._lookup(oid, owner)
        if o is None:
            self.ev.append((EV_CANCEL_REJECT, owner, clordid, oid, -1, 0, price, qty, code, 0))
            return False
        i, side, sd = o["instr"], o["side"], o["side"] - 1
        if not self._ok_price(i, price) or qty <= o["cum"] or qty > 10**9:
            self.ev.append((EV_CANCEL_REJECT, owner, clordid, oid, i, side, price, qty,
                            RJ_BAD_PRICE if not self._ok_price(i, price) else RJ_BAD_QTY, 0))
            return False
        if price == o["price"] and qty <= o["qty"]:
            o["qty"] = qty
            self.ev.append((EV_REPLACED, owner, o["clordid"], oid, i, side, price, qty, qty - o["cum"], 0))
            self._level(i, sd, price)
            return True
        self.sides[i][sd][o["price"]].remove(o)
        del self.orders[oid]
        self._level(i, sd, o["price"])
        self.ev.append((EV_REPLACED, owner, o["clordid"], oid, i, side, price, qty, qty - o["cum"], 0))
        left = self._match(i, side, price, qty - o["cum"], owner, o["clordid"], oid, False)
        if left > 0:
            o.update(price=price, qty=qty, cum=qty - left)
            self._rest(o)
        return True
