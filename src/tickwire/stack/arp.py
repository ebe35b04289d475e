"""ARP cache and responder (RFC 826, RFC 1122 §2.3.2, RFC 5227 for conflicts).

Cache: open addressing with linear probing over ``st.arp`` rows; deleted rows
become tombstones so later entries of the same probe chain stay reachable.
Entries expire ``C_ARP_TIMEOUT`` after they were last confirmed; an expired or
unknown address becomes INCOMPLETE and ``stack_poll`` sends at most one request
per ``C_ARP_RETRY_NS`` for it, ``C_ARP_TRIES`` times, then gives up (counted).
"""

from __future__ import annotations

from numba import njit

from ..mem.hotpath import hot

from ..wire.arp import ARP_REPLY, ARP_REQUEST, arp_oper, arp_sha, arp_spa, arp_tpa, arp_write
from ..wire.bytes import wr48
from ..wire.ethernet import ETH_HLEN, eth_write
from .state import (ACT_FREE, ACT_TX, A_EXPIRES, A_IP, A_MAC, A_NEXT_REQ, A_STATE, A_TRIES, ARP_FREE, ARP_INCOMPLETE,
                    ARP_REACHABLE, ARP_STATIC, ARP_TOMBSTONE, C_ARP_TIMEOUT, C_IP, C_MAC, C_NOW,
                    K_ARP_EVICTED, K_ARP_LEARNED, K_ARP_NOT_FOR_US, K_ARP_REPLY_RX, K_ARP_REPLY_TX, K_ARP_REQUEST_RX,
                    K_IP_CONFLICT)


@njit(cache=True, inline="always")
def _slot0(arp, ip):
    return ((ip * 0x9E3779B1) >> 16) & (arp.shape[0] - 1)


@hot
def arp_find(arp, ip):
    """Row of ``ip`` (any state but free/tombstone), or -1."""
    n = arp.shape[0]
    i = _slot0(arp, ip)
    for _ in range(n):
        s = arp[i, A_STATE]
        if s == ARP_FREE:
            return -1
        if s != ARP_TOMBSTONE and arp[i, A_IP] == ip:
            return i
        i = (i + 1) & (n - 1)
    return -1


@hot
def arp_insert(arp, ip):
    """Row for ``ip``, creating an INCOMPLETE row if needed: a free row or tombstone on
    its probe chain, else (a full table) the learned row confirmed longest ago — so that
    a flood of ARP from forged senders cannot lock out the next hop for good; -2 - row
    when a row was evicted for it (the caller counts it); -1 when every row is static or
    being resolved."""
    r = arp_find(arp, ip)
    if r >= 0:
        return r
    n = arp.shape[0]
    i = _slot0(arp, ip)
    victim = -1
    for _ in range(n):
        s = arp[i, A_STATE]
        if s == ARP_FREE or s == ARP_TOMBSTONE:
            _claim(arp, i, ip)
            return i
        if s == ARP_REACHABLE and (victim < 0 or arp[i, A_EXPIRES] < arp[victim, A_EXPIRES]):
            victim = i
        i = (i + 1) & (n - 1)
    if victim < 0:
        return -1
    # no free row anywhere: every row is on ip's probe chain, so any of them is reachable
    _claim(arp, victim, ip)
    return -2 - victim


@njit(cache=True, inline="always")
def _claim(arp, i, ip):
    arp[i, A_IP] = ip
    arp[i, A_MAC] = 0
    arp[i, A_STATE] = ARP_INCOMPLETE
    arp[i, A_TRIES] = 0
    arp[i, A_NEXT_REQ] = 0
    arp[i, A_EXPIRES] = 0


@njit(cache=True, inline="always")
def _insert_counted(st, ip):
    """arp_insert, counting an eviction; the row or -1."""
    r = arp_insert(st.arp, ip)
    if r <= -2:
        st.cnt[K_ARP_EVICTED] += 1
        r = -2 - r
    return r


@hot
def arp_learn(st, ip, mac):
    """Record ip -> mac as reachable (static entries are never overwritten)."""
    r = _insert_counted(st, ip)
    if r < 0 or st.arp[r, A_STATE] == ARP_STATIC:
        return
    if st.arp[r, A_STATE] != ARP_REACHABLE or st.arp[r, A_MAC] != mac:
        st.cnt[K_ARP_LEARNED] += 1
    st.arp[r, A_MAC] = mac
    st.arp[r, A_STATE] = ARP_REACHABLE
    st.arp[r, A_EXPIRES] = st.cfg[C_NOW] + st.cfg[C_ARP_TIMEOUT]
    st.arp[r, A_TRIES] = 0


@hot
def arp_lookup(st, ip):
    """MAC for ``ip`` or -1 (then an INCOMPLETE entry exists and stack_poll will ask)."""
    arp = st.arp
    r = arp_find(arp, ip)
    if r >= 0:
        s = arp[r, A_STATE]
        if s == ARP_STATIC or (s == ARP_REACHABLE and arp[r, A_EXPIRES] > st.cfg[C_NOW]):
            return arp[r, A_MAC]
        if s == ARP_REACHABLE:          # expired: ask again, keep nothing stale
            arp[r, A_STATE] = ARP_INCOMPLETE
            arp[r, A_TRIES] = 0
            arp[r, A_NEXT_REQ] = 0
        return -1
    _insert_counted(st, ip)
    return -1


@hot
def arp_input(st, buf, start, l3, length):
    """Handle a validated ARP packet at ``l3``; a request for us becomes the reply in place."""
    cfg = st.cfg
    op = arp_oper(buf, l3)
    sha = arp_sha(buf, l3)
    spa = arp_spa(buf, l3)
    tpa = arp_tpa(buf, l3)
    me = cfg[C_IP]
    if spa == me and sha != cfg[C_MAC]:
        st.cnt[K_IP_CONFLICT] += 1
        return ACT_FREE
    # RFC 826 "merge": update an existing entry from any ARP; add one only if it is for us.
    if spa != 0:
        r = arp_find(st.arp, spa)
        if tpa == me or (r >= 0 and st.arp[r, A_STATE] != ARP_STATIC):
            arp_learn(st, spa, sha)
    if op == ARP_REPLY:
        st.cnt[K_ARP_REPLY_RX] += 1
        return ACT_FREE
    st.cnt[K_ARP_REQUEST_RX] += 1
    if tpa != me or me == 0:
        st.cnt[K_ARP_NOT_FOR_US] += 1
        return ACT_FREE
    mac = cfg[C_MAC]
    # Reply in place (RFC 826 "swap hardware and protocol fields"); any VLAN tag stays.
    wr48(buf, start, sha)
    wr48(buf, start + 6, mac)
    arp_write(buf, l3, ARP_REPLY, mac, me, sha, spa)
    st.cnt[K_ARP_REPLY_TX] += 1
    return ACT_TX


@hot
def arp_build_request(st, buf, start, target, gratuitous):
    """Broadcast request (or a gratuitous ARP announcing us, RFC 5227 §3); returns the length
    (padded to the 60-byte Ethernet minimum)."""
    mac = st.cfg[C_MAC]
    me = st.cfg[C_IP]
    l3 = eth_write(buf, start, 0xFFFFFFFFFFFF, mac, 0x0806)
    end = arp_write(buf, l3, ARP_REQUEST, mac, me, 0, me if gratuitous else target)
    for i in range(end, start + 60):
        buf[i] = 0
    return 60
