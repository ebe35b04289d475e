"""What the engine does with each input, independent of the transport.

    md_packet(E, buf, off, length, source, now, t_rx)   one MDP 3.0 UDP payload
    oe_input(E, buf, off, n, now)                       order-entry bytes from the venue
    oe_timers(E, now)                                   heartbeats, lapse, kill-switch cancels
    oe_connected(E, now) / oe_disconnected(E)           transport up / down

Those take the engine state ``E`` by value (Python and tests call them). Everything the
transport loops call per packet or per order takes ``EP = ref.by_ref(E)``, a pointer to
it (``md_begin``, ``md_instrument``, ``stamp_tx``, ``oe_input_r``, ``oe_timers_r``,
``act_on_intents``, ...): by value, each such call stored the state's 177-189 words on the
stack (mem/ref.py).

Each appends the order-entry bytes to send to ``E.txs`` (``E.meta[M_TXS_LEN]``); the
transport loop sends them and resets the length. Nothing here allocates.

Flow of one market-data packet (DESIGN.md data flow):
    feed_input -> for each instrument whose book changed: top of book + risk market state
    -> strategy.on_book_update -> intents -> pre-trade risk -> encode -> txs
Stage timestamps are kept for packets that produced at least one order: rdtscp at the two
ends (the transport's ST_RX and stamp_tx), rdtsc between (``stage_stamp``, layout.M_STAGES).
"""

from __future__ import annotations

from numba import njit

from ..feed.handler import feed_input, instrument_slot, views
from ..feed.state import C_MESSAGES, I_STATE, I_STATUS, I_UPDATES, S_SYNCED, SRC_SNAPSHOT
from ..book.mbp import BID, EMPTY_PX, OFFER, PX, QTY
from ..mem.atomics import rdtsc, rdtscp
from ..order import reasons as R
from ..order import wire_layout as W
from ..order.layout import (EXEC_CANCEL_REJECT, EXEC_CANCELED, EXEC_NEW, EXEC_REJECTED, EXEC_REPLACED, EXEC_TRADE,
                            G_KILL, O_EXCH_ID, O_INSTR, O_SIDE, O_TIF)
from ..order.stream import stream_append, stream_keep_tail
from ..order.oe_codec import (enc_cancel, enc_new_order, enc_replace, frame_check, rd_field_i32, rd_field_u32,
                              rd_field_u64, template_of)
from ..order.orders import (REC_OK, collect_cancels, find, forget_all, reconcile, submit_cancel, submit_new,
                            submit_replace)
from ..order.risk import market_update, session_changed, status_update
from ..order.session import (A_BUSINESS, A_DOWN, A_RESET, A_UP, client_connect, client_disconnected,
                             client_garbage, client_on_frame, client_poll, next_out_seq, SS_NEXT_OUT)
from ..order.layout import I_LAST
from ..sbe.le import rd_i32, rd_i64, rd_u8, rd_u16, rd_u32
from .dispatch import strat_book, strat_exec, strat_trade
from ..mem.ref import by_ref, deref
from .layout import (IM_SECID, IM_SLOT, IM_STATUS_DEFAULT, IM_UPDATES, IN_INSTR, IN_KIND, IN_PRICE, IN_QTY, IN_REF,
                     IN_SIDE, IN_TIF, K_CANCEL, K_NEW, K_REPLACE, M_BAD_INTENTS, M_BOOK_EVENTS, M_CLOSE_TRANSPORT,
                     M_EXEC_EVENTS, M_INTENTS, M_KILL_CANCELS, M_LAST_T2T, M_MD_PACKETS, M_NOW, M_OE_FRAMES,
                     M_OE_GARBAGE, M_RESETS, M_RISK_REJECTS, M_RXS_LEN, M_RXS_OVERFLOW, M_SENT_CANCEL, M_SENT_NEW,
                     M_SENT_REPLACE, M_SESSION_DOWNS, M_STAMP_N, M_TRADE_EVENTS, M_TXS_LEN, M_TXS_OVERFLOW, M_T_FEED, M_T_PREV_POLL, M_T_RX,
                     M_MD_SEQ, M_MD_SRC, M_STAGES, ST_MD_SEQ, ST_MD_SRC, ST_OE_N, ST_OE_SEQ,
                     M_T_STACK, ST_FEED, ST_PREV_POLL, ST_RISK, ST_RX, ST_STACK, ST_STRATEGY, ST_TCP, ST_TX, TOP_ASK, TOP_ASK_QTY, TOP_BID, TOP_BID_QTY, TOP_UPDATES, TOP_VALID)

IDS_NOW = 1


@njit(cache=True, inline="always")
def stage_stamp(E):
    """An intermediate stage boundary (layout.M_STAGES): plain rdtsc, or 0 when only the
    two ends of tick-to-trade are stamped. Not rdtscp: that one waits for every earlier
    instruction, and five of them per order cost more than some of the stages they time."""
    return rdtsc() if E.meta[M_STAGES] != 0 else 0


@njit(cache=True, inline="always")
def _txs_room(E):
    return E.meta[M_TXS_LEN] + W.MAX_FRAME <= E.txs.shape[0]


@njit(cache=True, _nrt=False)
def act_on_intents(EP, n, now):
    """Risk-check and encode the strategy's intents. Returns how many went out."""
    E = deref(EP)
    sent = 0
    risk = E.risk
    tab = E.orders
    it = E.intents
    secid_of = E.imap
    E.meta[M_INTENTS] += n
    for k in range(n):
        if not _txs_room(E):
            E.meta[M_TXS_OVERFLOW] += 1
            break
        kind = it[k, IN_KIND]
        off = E.meta[M_TXS_LEN]
        if kind == K_NEW:
            i = it[k, IN_INSTR]
            tif = it[k, IN_TIF]
            if tif != 0 and tif != 3:
                # only Day (0) and IOC (3) are ours to send (strategy.py); the order row keeps
                # what was sent, and a Replace repeats it, so nothing else may enter the row
                E.meta[M_BAD_INTENTS] += 1
                continue
            r = submit_new(risk, tab, now, i, it[k, IN_SIDE], it[k, IN_PRICE], it[k, IN_QTY], tif, it[k, IN_REF])
            if r != R.OK:
                E.meta[M_RISK_REJECTS] += 1
                continue
            # checked by risk: 0 <= i < n_instr, 0 < qty <= max_qty, side in (1, 2)
            E.meta[M_TXS_LEN] = off + enc_new_order(E.txs, off, next_out_seq(E.sess), now, it[k, IN_REF],
                                                    it[k, IN_PRICE], it[k, IN_QTY], secid_of[i, IM_SECID],
                                                    it[k, IN_SIDE], tif)
            E.meta[M_SENT_NEW] += 1
            sent += 1
        elif kind == K_CANCEL:
            cid = it[k, IN_REF]
            r = submit_cancel(risk, tab, now, cid)
            if r != R.OK:
                E.meta[M_RISK_REJECTS] += 1
                continue
            s = find(tab, cid)
            o = tab.orders
            E.meta[M_TXS_LEN] = off + enc_cancel(E.txs, off, next_out_seq(E.sess), now, cid, o[s, O_EXCH_ID],
                                                 secid_of[o[s, O_INSTR], IM_SECID], o[s, O_SIDE])
            E.meta[M_SENT_CANCEL] += 1
            sent += 1
        elif kind == K_REPLACE:
            cid = it[k, IN_REF]
            r = submit_replace(risk, tab, now, cid, it[k, IN_PRICE], it[k, IN_QTY])
            if r != R.OK:
                E.meta[M_RISK_REJECTS] += 1
                continue
            s = find(tab, cid)
            o = tab.orders
            E.meta[M_TXS_LEN] = off + enc_replace(E.txs, off, next_out_seq(E.sess), now, cid, o[s, O_EXCH_ID],
                                                  it[k, IN_PRICE], it[k, IN_QTY], secid_of[o[s, O_INSTR], IM_SECID],
                                                  o[s, O_SIDE], o[s, O_TIF])
            E.meta[M_SENT_REPLACE] += 1
            sent += 1
        else:
            E.meta[M_BAD_INTENTS] += 1
    return sent


@njit(cache=True, inline="always")
def _clamp_intents(E, n):
    if n < 0:
        return 0
    if n > E.intents.shape[0]:
        return E.intents.shape[0]
    return n


@njit(cache=True, _nrt=False)
def refresh_instrument(EP, i, now):
    """Copy the book's top into the strategy view and risk. Returns True when it changed.
    Compiled without NRT, like the feed handler: ``views`` returns region views that
    share the flat array's meminfo without a reference of their own, so a refcounting
    caller would release them once too often."""
    E = deref(EP)
    feed = views(E.feed)
    s = E.imap[i, IM_SLOT]
    if s < 0:
        s = instrument_slot(feed, E.imap[i, IM_SECID], False)
        if s < 0:
            return False
        E.imap[i, IM_SLOT] = s
    upd = feed.inst[s, I_UPDATES]
    valid = 1 if feed.inst[s, I_STATE] == S_SYNCED else 0
    top = E.sv.top
    if upd == E.imap[i, IM_UPDATES] and valid == top[i, TOP_VALID]:
        return False
    E.imap[i, IM_UPDATES] = upd
    lv = feed.levels
    bid = lv[s, BID, 0, PX]
    ask = lv[s, OFFER, 0, PX]
    top[i, TOP_BID] = 0 if bid == EMPTY_PX else bid
    top[i, TOP_BID_QTY] = lv[s, BID, 0, QTY]
    top[i, TOP_ASK] = 0 if ask == EMPTY_PX else ask
    top[i, TOP_ASK_QTY] = lv[s, OFFER, 0, QTY]
    top[i, TOP_VALID] = valid
    top[i, TOP_UPDATES] = upd
    market_update(E.risk, i, top[i, TOP_BID], top[i, TOP_ASK], 0, valid, now)
    st = feed.inst[s, I_STATUS]
    if st <= 0:
        st = E.imap[i, IM_STATUS_DEFAULT]   # no SecurityStatus seen yet: the configured default
    status_update(E.risk, i, st, 0, 0)
    return True


@njit(cache=True, inline="always", _nrt=False)
def _messages_seen(E):
    return views(E.feed).ctr[C_MESSAGES]


@njit(cache=True, _nrt=False)
def _trades(EP, buf, off, length, now):
    """TradeSummary48 entries of a packet the feed handler just processed -> on_trade.
    Layout: mdp3.md §1/§3 (packet header 12, MsgSize u16, SBE header 8, root block,
    groupSize 3, entries: MDEntryPx i64 @0, MDEntrySize i32 @8, SecurityID i32 @12,
    AggressorSide u8 @24). A message is read only under the feed handler's own rules (root
    block at least 48's 11 bytes, the whole group inside the message); the handler has
    already counted any malformation, so a message it refused is skipped here too, and no
    trade of it reaches on_trade or the collar's last price."""
    E = deref(EP)
    sent = 0
    end = off + length
    pos = off + 12
    while pos + 2 + 8 <= end:
        msize = rd_u16(buf, pos)
        if msize < 10 or pos + msize > end:
            break
        body = pos + 2 + 8
        mend = pos + msize
        block = rd_u16(buf, pos + 2)
        if rd_u16(buf, pos + 4) == 48 and rd_u16(buf, pos + 6) == 1 and block >= 11:
            g = body + block
            if g + 3 <= mend:
                elen = rd_u16(buf, g)
                cnt = rd_u8(buf, g + 2)
                e = g + 3
                if elen >= 25 and e + elen * cnt <= mend:
                    for _ in range(cnt):
                        secid = rd_i32(buf, e + 12)
                        for i in range(E.imap.shape[0]):
                            if E.imap[i, IM_SECID] == secid:
                                px = rd_i64(buf, e)
                                if px > 0:
                                    E.risk.inst[i, I_LAST] = px
                                E.meta[M_TRADE_EVENTS] += 1
                                n = _clamp_intents(E, strat_trade(E.sv, i, px, rd_i32(buf, e + 8),
                                                                  rd_u8(buf, e + 24), E.intents))
                                if n > 0:
                                    sent += act_on_intents(EP, n, now)
                                break
                        e += elen
        pos = mend
    return sent


@njit(cache=True, _nrt=False)
def md_begin(EP, buf, off, length, source, now, t_rx):
    """First half of a market-data payload: feed handler -> books, then trade summaries ->
    ``on_trade``. Returns the order-entry messages produced (by on_trade). Keeps ``t_rx``
    and the time the feed was done for the stage stamps of orders that follow."""
    E = deref(EP)
    E.meta[M_NOW] = now
    E.meta[M_MD_PACKETS] += 1
    E.sv.ids[IDS_NOW] = now
    seen = _messages_seen(E)
    feed_input(E.feed, buf, off, length, source)
    t_feed = stage_stamp(E)
    E.meta[M_T_RX] = t_rx
    E.meta[M_T_FEED] = t_feed
    E.meta[M_MD_SEQ] = rd_u32(buf, off) if length >= 4 else -1   # MsgSeqNum, mdp3.md §1
    E.meta[M_MD_SRC] = source
    sent = 0
    if source != SRC_SNAPSHOT and _messages_seen(E) != seen:
        sent = _trades(EP, buf, off, length, now)
        if sent > 0:
            _record(EP, stage_stamp(E), sent)
    return sent


@njit(cache=True, _nrt=False)
def md_instrument(EP, i, now):
    """Second half, per engine instrument: if its book moved, top of book -> risk market
    state -> ``on_book_update`` -> risk -> encode. Returns the messages produced; the
    transport sends them at once (before the next instrument is looked at)."""
    E = deref(EP)
    if not refresh_instrument(EP, i, now):
        return 0
    E.meta[M_BOOK_EVENTS] += 1
    n = _clamp_intents(E, strat_book(E.sv, i, E.intents))
    if n <= 0:
        return 0
    t_strat = stage_stamp(E)
    sent = act_on_intents(EP, n, now)
    if sent > 0:
        _record(EP, t_strat, sent)
    return sent


@njit(cache=True, _nrt=False)
def _record(EP, t_strat, sent):
    """A stamp row for the ``sent`` orders just encoded (ST_TX is written by the transport).
    They took the ``sent`` SeqNums before the session's next one (next_out_seq)."""
    E = deref(EP)
    t_risk = stage_stamp(E)
    k = E.meta[M_STAMP_N] % E.stamps.shape[0]
    E.stamps[k, ST_RX] = E.meta[M_T_RX]
    E.stamps[k, ST_FEED] = E.meta[M_T_FEED]
    E.stamps[k, ST_STRATEGY] = t_strat
    E.stamps[k, ST_RISK] = t_risk
    E.stamps[k, ST_STACK] = E.meta[M_T_STACK]
    E.stamps[k, ST_PREV_POLL] = E.meta[M_T_PREV_POLL]
    E.stamps[k, ST_TCP] = 0
    E.stamps[k, ST_TX] = 0
    E.stamps[k, ST_MD_SEQ] = E.meta[M_MD_SEQ]
    E.stamps[k, ST_MD_SRC] = E.meta[M_MD_SRC]
    E.stamps[k, ST_OE_SEQ] = E.sess[SS_NEXT_OUT] - sent
    E.stamps[k, ST_OE_N] = sent
    E.meta[M_STAMP_N] += 1


@njit(cache=True, _nrt=False)
def md_packet(E, buf, off, length, source, now, t_rx):
    """One market-data payload, all instruments (transports that send once per packet,
    tests). Returns the number of order-entry messages produced."""
    EP = by_ref(E)
    sent = md_begin(EP, buf, off, length, source, now, t_rx)
    for i in range(E.imap.shape[0]):
        sent += md_instrument(EP, i, now)
    return sent


@njit(cache=True, _nrt=False)
def stamp_tx(EP, n_before, t_tcp):
    """Called by the transport once the order frame is in the TX ring: ``t_tcp`` is when
    the transport had the frame built (0: no separate build stage, or stages off).
    The end of tick-to-trade: rdtscp, like its start (ST_RX)."""
    E = deref(EP)
    if E.meta[M_STAMP_N] > n_before:
        t = rdtscp()
        k = (E.meta[M_STAMP_N] - 1) % E.stamps.shape[0]
        E.stamps[k, ST_TCP] = t_tcp if t_tcp > 0 else E.stamps[k, ST_RISK]
        E.stamps[k, ST_TX] = t
        E.meta[M_LAST_T2T] = t - E.stamps[k, ST_RX]


@njit(cache=True, inline="always")
def _exec_type(tid):
    if tid == W.ER_NEW:
        return EXEC_NEW
    if tid == W.ER_TRADE:
        return EXEC_TRADE
    if tid == W.ER_CANCEL:
        return EXEC_CANCELED
    if tid == W.ER_MODIFY:
        return EXEC_REPLACED
    if tid == W.ER_REJECT:
        return EXEC_REJECTED
    if tid == W.CANCEL_REJECT:
        return EXEC_CANCEL_REJECT
    return -1


@njit(cache=True, _nrt=False)
def _on_session_action(EP, act, now):
    E = deref(EP)
    if act == A_UP:
        session_changed(E.risk, True)
    elif act == A_DOWN:
        E.meta[M_SESSION_DOWNS] += 1
        session_changed(E.risk, False)
        E.meta[M_CLOSE_TRANSPORT] = 1
    elif act == A_RESET:
        E.meta[M_RESETS] += 1
        forget_all(E.risk, E.orders)


@njit(cache=True, _nrt=False)
def _business(EP, buf, off, now):
    """An in-sequence execution report: reconcile, then tell the strategy."""
    E = deref(EP)
    tid = template_of(buf, off)
    et = _exec_type(tid)
    if et < 0:
        return
    E.meta[M_EXEC_EVENTS] += 1
    cid = rd_field_u64(buf, off, W.F_CLORDID)
    oid = rd_field_u64(buf, off, W.F_ER_OID)
    last_px = 0
    last_qty = 0
    if et == EXEC_TRADE:
        last_px = rd_field_u64(buf, off, W.F_ER_LAST_PX)
        last_qty = rd_field_u32(buf, off, W.F_ER_LAST_QTY)
    s = find(E.orders, cid)
    i = E.orders.orders[s, O_INSTR] if s >= 0 else -1
    side = E.orders.orders[s, O_SIDE] if s >= 0 else 0
    if reconcile(E.risk, E.orders, et, cid, oid, last_qty, last_px) != REC_OK or i < 0:
        return
    n = _clamp_intents(E, strat_exec(E.sv, i, cid, et, side, last_px, last_qty, E.intents))
    if n > 0:
        act_on_intents(EP, n, now)


@njit(cache=True, _nrt=False)
def oe_input_r(EP, buf, off, n, now):
    """Order-entry bytes from the transport: appended to the stream buffer in pieces that
    fit it, every complete frame handled after each piece (so a partial frame plus a whole
    64 KiB receive is never cut: the framing would lose its place). Garbage (frame_check
    < 0) ends the session: a byte stream cannot be resynchronised, so we Terminate, ask
    the transport to reconnect and drop the rest of these bytes."""
    E = deref(EP)
    E.meta[M_NOW] = now
    E.sv.ids[IDS_NOW] = now
    taken = 0
    while True:
        rl = E.meta[M_RXS_LEN]
        take = stream_append(E.rxs, rl, buf, off + taken, n - taken)
        rl += take
        taken += take
        pos = 0
        while pos < rl:
            k = frame_check(E.rxs, pos, rl - pos)
            if k == 0:
                break
            if k < 0:
                E.meta[M_OE_GARBAGE] += 1
                if _txs_room(E):
                    t = E.meta[M_TXS_LEN]
                    E.meta[M_TXS_LEN] = t + client_garbage(E.sess, now, E.txs, t, k)
                _on_session_action(EP, A_DOWN, now)
                rl = 0
                pos = 0
                taken = n
                break
            E.meta[M_OE_FRAMES] += 1
            t = E.meta[M_TXS_LEN]
            act = A_DOWN
            w = 0
            if _txs_room(E):
                act, w = client_on_frame(E.sess, E.rxs, pos, k, now, E.txs, t)
                E.meta[M_TXS_LEN] = t + w
            else:
                E.meta[M_TXS_OVERFLOW] += 1
            if act == A_BUSINESS:
                _business(EP, E.rxs, pos, now)
            elif act != 0:
                _on_session_action(EP, act, now)
            pos += k
        E.meta[M_RXS_LEN] = stream_keep_tail(E.rxs, pos, rl)
        if taken >= n:
            return
        if pos == 0:
            # a full buffer without one whole frame: cannot happen while the buffer holds a
            # MAX_FRAME (frame_check refuses longer ones); counted, the rest dropped
            E.meta[M_RXS_OVERFLOW] += 1
            return


@njit(cache=True, _nrt=False)
def oe_input(E, buf, off, n, now):
    """``oe_input_r`` for callers holding the state itself (Python, tests)."""
    oe_input_r(by_ref(E), buf, off, n, now)


@njit(cache=True, _nrt=False)
def oe_connected(E, now):
    E.meta[M_RXS_LEN] = 0
    E.meta[M_CLOSE_TRANSPORT] = 0
    t = E.meta[M_TXS_LEN]
    E.meta[M_TXS_LEN] = t + client_connect(E.sess, now, E.txs, t)


@njit(cache=True, _nrt=False)
def oe_disconnected(E):
    client_disconnected(E.sess)
    session_changed(E.risk, False)
    E.meta[M_SESSION_DOWNS] += 1


@njit(cache=True, _nrt=False)
def oe_timers_r(EP, now):
    """Heartbeat / lapse, and while the kill switch is engaged, cancel what is working."""
    E = deref(EP)
    E.meta[M_NOW] = now
    if _txs_room(E):
        t = E.meta[M_TXS_LEN]
        act, w = client_poll(E.sess, now, E.txs, t)
        E.meta[M_TXS_LEN] = t + w
        if act != 0:
            _on_session_action(EP, act, now)
    if E.risk.glob[G_KILL] != 0:
        n = collect_cancels(E.orders, E.intents[:, IN_REF])
        for k in range(n):
            E.intents[k, IN_KIND] = K_CANCEL
        if n > 0:
            E.meta[M_KILL_CANCELS] += act_on_intents(EP, n, now)


@njit(cache=True, _nrt=False)
def oe_timers(E, now):
    """``oe_timers_r`` for callers holding the state itself (Python, tests)."""
    oe_timers_r(by_ref(E), now)
