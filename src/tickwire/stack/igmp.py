"""IGMP host side: v3 (RFC 3376 §5) with v1/v2 compatibility (RFC 3376 §7, RFC 2236 §3).

Per-group timers in ``st.groups``: a report is due at G_REPORT_DUE (0 = none) and is
repeated G_REPORTS_LEFT times (Robustness Variable) for state changes. A query
schedules a current-state report at a random delay in [0, Max Resp Time)
(RFC 3376 §5.2; RFC 2236 §3). In v1/v2 mode, hearing another host's report for
the same group cancels ours (report suppression, RFC 2236 §3); v3 has none.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..mem.hotpath import hot

from ..wire.bytes import rd8
from ..wire.causes import OK
from ..wire.igmp import (ALL_ROUTERS, ALL_SYSTEMS, CHANGE_TO_EXCLUDE, CHANGE_TO_INCLUDE, IGMP_QUERY,
                         IGMPV1_REPORT, IGMPV2_LEAVE, IGMPV2_REPORT, IGMPV3_REPORT, IGMPV3_ROUTERS, MODE_IS_EXCLUDE,
                         igmp_group, igmp_query_decode, igmpv2_write, igmpv3_write_report)
from ..wire.ethernet import eth_write, ipv4_multicast_mac
from ..wire.ipv4 import PROTO_IGMP, ipv4_write
from .state import (SCRATCH_LEN, ACT_FREE, C_GROUPS_HWM, C_IGMP_VERSION, C_IP, C_IP_ID, C_MAC, C_NOW, C_RNG, C_ROBUSTNESS,
                    C_UNSOLICITED_NS, C_V1_QUERIER_UNTIL, C_V2_QUERIER_UNTIL, G_ADDR, G_PENDING, G_REPORT_DUE,
                    G_REPORTS_LEFT, G_STATE, GROUP_FREE, GROUP_JOINED, GROUP_LEAVING, K_IGMP_IGNORED,
                    K_IGMP_LEAVE_TX, K_IGMP_QUERY_RX, K_IGMP_REPORT_RX, K_IGMP_REPORT_TX, NS)

# RFC 3376 §8.12 Older Version Querier Present Timeout = RV * QI + QRI = 2 * 125 s + 10 s
OLDER_QUERIER_NS = 260 * NS
MAX_RECORDS = SCRATCH_LEN   # records per v3 report we build (8 bytes each, fits any MTU)


@njit(cache=True, inline="always")
def rand_below(st, n):
    """xorshift64 (Marsaglia 2003) in [0, n): timer jitter, not cryptography."""
    x = st.cfg[C_RNG]
    x ^= (x << 13) & 0x7FFFFFFFFFFFFFFF
    x ^= x >> 7
    x ^= (x << 17) & 0x7FFFFFFFFFFFFFFF
    x &= 0x7FFFFFFFFFFFFFFF
    if x == 0:
        x = 1
    st.cfg[C_RNG] = x
    return x % n if n > 0 else 0


@njit(cache=True, inline="always")
def igmp_version(st):
    now = st.cfg[C_NOW]
    if now < st.cfg[C_V1_QUERIER_UNTIL]:
        return 1
    if now < st.cfg[C_V2_QUERIER_UNTIL]:
        return 2
    return st.cfg[C_IGMP_VERSION]


@njit(cache=True, inline="always")
def group_find(cfg, g, group):
    """Row of a joined ``group`` in the groups table ``g`` or -1. Takes arrays, not the
    state tuple: every tuple passed per packet costs NRT reference-count calls."""
    for i in range(cfg[C_GROUPS_HWM]):
        if g[i, G_STATE] == GROUP_JOINED and g[i, G_ADDR] == group:
            return i
    return -1


@njit(cache=True, inline="always")
def group_member(cfg, groups, group):
    """True if frames to ``group`` are for us (224.0.0.1 is always joined, RFC 1112 §4)."""
    return group == ALL_SYSTEMS or group_find(cfg, groups, group) >= 0


@hot
def _schedule(st, row, delay_ns):
    due = st.cfg[C_NOW] + rand_below(st, delay_ns)
    g = st.groups
    if g[row, G_REPORT_DUE] == 0 or g[row, G_REPORT_DUE] > due:
        g[row, G_REPORT_DUE] = due
    if g[row, G_REPORTS_LEFT] == 0:
        g[row, G_REPORTS_LEFT] = 1


@hot
def igmp_input(st, buf, l4, l4len, dst):
    typ = rd8(buf, l4)
    g = st.groups
    if typ == IGMP_QUERY:
        st.cnt[K_IGMP_QUERY_RX] += 1
        cause, ver, mrt_ds, group = igmp_query_decode(buf, l4, l4len)
        if cause != OK:
            st.cnt[cause] += 1
            return ACT_FREE
        now = st.cfg[C_NOW]
        if ver == 1:
            st.cfg[C_V1_QUERIER_UNTIL] = now + OLDER_QUERIER_NS
        elif ver == 2:
            st.cfg[C_V2_QUERIER_UNTIL] = now + OLDER_QUERIER_NS
        delay = max(mrt_ds, 1) * (NS // 10)
        for i in range(g.shape[0]):
            if g[i, G_STATE] == GROUP_JOINED and (group == 0 or g[i, G_ADDR] == group):
                _schedule(st, i, delay)
        return ACT_FREE
    if typ == IGMPV1_REPORT or typ == IGMPV2_REPORT:
        st.cnt[K_IGMP_REPORT_RX] += 1
        if igmp_version(st) < 3:
            r = group_find(st.cfg, g, igmp_group(buf, l4))
            if r >= 0 and g[r, G_PENDING] == 0:
                g[r, G_REPORT_DUE] = 0
                g[r, G_REPORTS_LEFT] = 0
        return ACT_FREE
    if typ == IGMPV3_REPORT or typ == IGMPV2_LEAVE:
        st.cnt[K_IGMP_REPORT_RX] += 1
        return ACT_FREE
    st.cnt[K_IGMP_IGNORED] += 1
    return ACT_FREE


@hot
def igmp_change(st, group, join):
    """Start a join (or leave) of ``group``: state-change reports are sent Robustness
    times, the first at once (RFC 3376 §5.1). Returns False when the table is full."""
    g = st.groups
    r = -1
    for i in range(g.shape[0]):
        if g[i, G_STATE] != GROUP_FREE and g[i, G_ADDR] == group:
            r = i
            break
    if join:
        if r < 0:
            for i in range(g.shape[0]):
                if g[i, G_STATE] == GROUP_FREE:
                    r = i
                    break
        if r < 0:
            return False
        g[r, G_ADDR] = group
        g[r, G_STATE] = GROUP_JOINED
        st.cfg[C_GROUPS_HWM] = max(st.cfg[C_GROUPS_HWM], r + 1)
        g[r, G_PENDING] = 1
    else:
        if r < 0:
            return True
        g[r, G_STATE] = GROUP_LEAVING
        g[r, G_PENDING] = 2
    g[r, G_REPORT_DUE] = st.cfg[C_NOW] if st.cfg[C_NOW] > 0 else 1
    g[r, G_REPORTS_LEFT] = st.cfg[C_ROBUSTNESS]
    return True


@hot
def _ip_igmp(st, buf, start, dst, igmp_len):
    l3 = eth_write(buf, start, ipv4_multicast_mac(dst), st.cfg[C_MAC], 0x0800)
    st.cfg[C_IP_ID] = (st.cfg[C_IP_ID] + 1) & 0xFFFF
    return ipv4_write(buf, l3, st.cfg[C_IP], dst, PROTO_IGMP, igmp_len, 1, st.cfg[C_IP_ID], 0xC0, True, True)


@hot
def _after_send(st, i):
    g = st.groups
    left = g[i, G_REPORTS_LEFT] - 1
    if left > 0:
        g[i, G_REPORTS_LEFT] = left
        g[i, G_REPORT_DUE] = st.cfg[C_NOW] + 1 + rand_below(st, st.cfg[C_UNSOLICITED_NS])
        return
    g[i, G_REPORTS_LEFT] = 0
    g[i, G_REPORT_DUE] = 0
    g[i, G_PENDING] = 0
    if g[i, G_STATE] == GROUP_LEAVING:
        g[i, G_STATE] = GROUP_FREE


@njit(cache=True)
def igmp_build_due(st, buf, start, room):
    """Build at most one frame of due reports at ``start``; returns its length (0: none due,
    or ``room`` is less than the 60-byte minimum frame every report is padded to)."""
    if room < 60:
        return 0
    g = st.groups
    now = st.cfg[C_NOW]
    ver = igmp_version(st)
    if ver == 3:
        # preallocated in the state: this runs inside runtime-free (@hot) loops, which cannot allocate
        rtypes, addrs, rows = st.scratch[0], st.scratch[1], st.scratch[2]
        n = 0
        for i in range(g.shape[0]):
            if g[i, G_STATE] != GROUP_FREE and g[i, G_REPORT_DUE] != 0 and g[i, G_REPORT_DUE] <= now \
                    and n < MAX_RECORDS and 14 + 24 + 8 + 8 * (n + 1) <= room:
                p = g[i, G_PENDING]
                rtypes[n] = MODE_IS_EXCLUDE if p == 0 else (CHANGE_TO_EXCLUDE if p == 1 else CHANGE_TO_INCLUDE)
                addrs[n] = g[i, G_ADDR]
                rows[n] = i
                n += 1
        if n == 0:
            return 0
        l4 = _ip_igmp(st, buf, start, IGMPV3_ROUTERS, 8 + 8 * n)
        end = igmpv3_write_report(buf, l4, rtypes, addrs, n)
        for k in range(n):
            _after_send(st, rows[k])
        st.cnt[K_IGMP_REPORT_TX] += 1
        for k in range(end, start + 60):
            buf[k] = 0
        return max(end - start, 60)
    for i in range(g.shape[0]):
        if g[i, G_STATE] != GROUP_FREE and g[i, G_REPORT_DUE] != 0 and g[i, G_REPORT_DUE] <= now:
            group = g[i, G_ADDR]
            if g[i, G_PENDING] == 2:
                if ver == 1:        # IGMPv1 has no leave message
                    g[i, G_REPORTS_LEFT] = 1
                    _after_send(st, i)
                    continue
                l4 = _ip_igmp(st, buf, start, ALL_ROUTERS, 8)
                end = igmpv2_write(buf, l4, IGMPV2_LEAVE, 0, group)
                st.cnt[K_IGMP_LEAVE_TX] += 1
            else:
                l4 = _ip_igmp(st, buf, start, group, 8)
                end = igmpv2_write(buf, l4, IGMPV1_REPORT if ver == 1 else IGMPV2_REPORT, 0, group)
                st.cnt[K_IGMP_REPORT_TX] += 1
            _after_send(st, i)
            for k in range(end, start + 60):
                buf[k] = 0
            return max(end - start, 60)
    return 0
