"""The simulator's measuring turn (``--e2e-out``): send the queued market data, then
busy-poll the order-entry connection in Numba, stamping what arrives (e2e_stamps.py).

Why one compiled call for both: an order is the engine's answer to a packet this call
just sent; if the simulator went back to Python between sending and polling, the order
could sit unseen in its receive path and the measurement would time the simulator.
A turn returns to Python (venue, timers, replies) ``grace`` ticks after the last byte
arrived, when the TCP slow path has work, or after ``budget`` ticks (the server sets it to
when the next synthetic order-flow step is due). Bytes found by the
first poll of a turn may have waited while Python ran: they are stamped ``late``.

Where the stamps are taken (both paths: "the simulator's application has the bytes"):
  * memif + tickwire TCP: after poll_step returned (rx_burst, TCP fast-path input and the
    immediate ACK), when the connection's receive ring holds the new bytes. They are only
    peeked at here; the server's Python reads them with Connection.recv as before.
  * kernel: right after recvfrom() returned them (MSG_DONTWAIT on the accepted socket).
Market data: right before tx_burst (memif, md_out.py) / before each sendto() (kernel).
"""

from __future__ import annotations

from numba import njit

from ..drivers.libc_calls import EAGAIN, EINTR, MSG_DONTWAIT, sys_errno, sys_recvfrom, sys_sendto
from ..mem.atomics import cpu_pause, rdtscp
from ..stack.tcp.fastpath import ring_get
from ..stack.tcp.loops import clock_us
from ..stack.tcp.poll import poll_step, slow_work_due
from ..stack.tcp.tcb import RX_NXT, RX_READ
from .e2e_stamps import EM_PEEK, EM_POLL_TICKS, md_seq_of, scan_oe, stamp_md
from .md_out import send_md

K_OK, K_CLOSED, K_ERROR = 0, 1, 2


@njit(cache=True)
def _peek(hot, rxq, slot, out, st, t, late):
    """Stamp the bytes that reached the connection's receive ring since the last peek."""
    pk = max(st.meta[EM_PEEK], hot[slot, RX_READ])
    k = min(hot[slot, RX_NXT] - pk, out.shape[0])
    if k <= 0:
        return 0
    ring_get(rxq[slot], pk, out, 0, k)
    scan_oe(st, out, 0, k, t, late)
    st.meta[EM_PEEK] = pk + k
    return k


@njit(cache=True)
def frames_turn(port_state, pool, net, mdq, mdq_len, count, dst, dport, sport, imp, rng, hold, hold_len, cnt, txb,
                tcp, slot, local_mac, clock, out, st, budget, grace):
    """``tcp`` = (bufs, hot, nslots, txq, rxq, tmpl, sg, slow, acks, opts) of the server's TcpStack.
    Returns (bytes peeked, frames for the slow path in tcp.slow, frames sent)."""
    bufs, hot, nslots, txq, rxq, tmpl, sg, slow, acks, opts = tcp
    sent = 0
    if count > 0:
        sent = send_md(port_state, pool, net, mdq, mdq_len, count, dst, dport, sport, imp, rng, hold, hold_len,
                       cnt, txb, st)
    t = rdtscp()
    t0 = t
    t_end = t + budget
    got = 0
    late = 1
    it = 0
    while True:
        nslow = poll_step(port_state, pool, bufs, bufs.shape[0], hot, nslots, txq, rxq, tmpl, sg, slow, acks, opts,
                          local_mac, clock_us(clock))
        t = rdtscp()
        if slot >= 0:
            k = _peek(hot, rxq, slot, out, st, t, late)
            if k > 0:
                got += k
                t_end = min(t_end, t + grace)
        late = 0
        it += 1
        if nslow > 0 or t >= t_end:
            break
        if (it & 255) == 0 and slow_work_due(hot, nslots, clock_us(clock)):
            break
        cpu_pause()
    st.meta[EM_POLL_TICKS] += t - t0
    return got, nslow, sent


@njit(cache=True)
def _recv_once(tcp_fd, out, got, sa, st, late):
    """One non-blocking recvfrom into ``out[got:]``; stamps what it returned.
    Returns (bytes, K_* status)."""
    room = out.shape[0] - got
    if room <= 0:
        return 0, K_OK
    sa[16] = 16
    r = sys_recvfrom(tcp_fd, out, got, room, MSG_DONTWAIT, sa)
    t = rdtscp()
    if r > 0:
        scan_oe(st, out, got, r, t, late)
        return r, K_OK
    if r == 0:
        return 0, K_CLOSED
    e = sys_errno()
    if e != EAGAIN and e != EINTR:
        return 0, K_ERROR
    return 0, K_OK


@njit(cache=True)
def kernel_turn(udp_fd, addrs, mdq, mdq_len, count, tcp_fd, out, sa, st, budget, grace):
    """Kernel sockets: each queued packet on feed A then feed B (sendto on ``udp_fd`` to
    ``addrs[f]``, a sockaddr_in), with one receive poll after each packet (an order
    answering the first packet must not wait for the last one to be sent), then
    recvfrom on the accepted order-entry socket until the turn ends.
    Returns (bytes received into ``out``, K_* status, datagrams sent, send errors)."""
    sent = 0
    errs = 0
    got = 0
    late = 1
    status = K_OK
    t0 = rdtscp()
    for q in range(count):
        n = mdq_len[q]
        seq = md_seq_of(mdq[q], n)
        for f in range(addrs.shape[0]):
            t = rdtscp()
            if sys_sendto(udp_fd, mdq[q], 0, n, 0, addrs[f], 16) == n:
                stamp_md(st, f, seq, t)
                sent += 1
            else:
                errs += 1
        if status == K_OK:
            r, status = _recv_once(tcp_fd, out, got, sa, st, late)
            got += r
            late = 0
    t = rdtscp()
    t_end = t + budget
    if got > 0:
        t_end = min(t_end, t + grace)
    while status == K_OK and got < out.shape[0]:
        r, status = _recv_once(tcp_fd, out, got, sa, st, late)
        t = rdtscp()
        if r > 0:
            got += r
            t_end = min(t_end, t + grace)
        late = 0
        if t >= t_end:
            break
        if r <= 0:
            cpu_pause()
    st.meta[EM_POLL_TICKS] += t - t0
    return got, status, sent, errs
