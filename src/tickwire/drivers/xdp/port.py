"""``xdp:`` port: AF_XDP socket + filter program + UMEM, opened from a spec string.

    xdp:dev=IF[,queue=N][,mode=auto|native|generic][,zerocopy=auto|on|off]
        [,ports=P1/P2/...][,groups=G1/G2/...][,ip=A.B.C.D]
        [,rx=2048][,tx=2048][,fill=2048][,comp=2048][,hugepages=auto|on|off][,bind_wait=10]

Everything that can go wrong during open is turned into an ``XdpSetupError``
naming the cause and the fix, and every resource taken so far is released
(the bpf_link is the last step, so a failure never leaves a program attached).
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import socket
import struct

import numpy as np

from ...mem.mempool import Mempool
from ...mem.shm import SharedRegion
from ..counters import Counters
from ..port import Port, register_burst
from ..spec import SpecArgs, SpecError
from .attach import _CAPS_FIX, Attachment, XdpSetupError  # noqa: F401 (re-exported)
from .datapath import (C_CHUNK, C_FD, C_NFRAMES, C_RX_WAKEUP_EVERY, C_SHARED, C_UFREE_TOP, CFG_LEN, EXTRA, XdpState,
                       xdp_fill_refill, xdp_reap_completions, xdp_tx_kick, xdp_rx_burst, xdp_tx_burst)
from .program import build_filter
from .xsk import XDP_COPY, XDP_USE_NEED_WAKEUP, XDP_ZEROCOPY, XskSocket, bind_when_released

register_burst(XdpState, xdp_rx_burst, xdp_tx_burst)

_SIOCETHTOOL, _ETHTOOL_GCHANNELS, _SIOCGIFFLAGS = 0x8946, 0x3c, 0x8913
_SIOCGIFHWADDR, _SIOCADDMULTI, _SIOCDELMULTI = 0x8927, 0x8931, 0x8932
_IFF_UP, _IFF_RUNNING = 0x1, 0x40


def _queues(ctl: socket.socket, dev: str) -> int | None:
    """RX queue count from ETHTOOL_GCHANNELS (rx + combined channels), asked through a
    socket in the caller's network namespace (/sys may show another namespace's view).
    None when the driver does not report channels."""
    import array
    buf = array.array("I", [_ETHTOOL_GCHANNELS] + [0] * 8)
    ifr = struct.pack("16sP", dev.encode()[:15], buf.buffer_info()[0])
    try:
        fcntl.ioctl(ctl.fileno(), _SIOCETHTOOL, ifr)
    except OSError:
        return None
    rx, combined = buf[5], buf[8]
    return (rx + combined) or None


def make_pool(n_bufs: int = 8192, buf_size: int = 2048, headroom: int = 256,
              hugepages: str = "auto") -> Mempool:
    """A Mempool whose backing memory can be registered as the UMEM (page-aligned
    shared memory, 2 MiB pages when available). Opening ``xdp:`` with it makes the
    pool and the UMEM one and the same: buffer index == UMEM frame, no copies."""
    try:
        region = SharedRegion.create(n_bufs * buf_size, name="tickwire-umem", hugepages=hugepages)
    except OSError as e:
        if hugepages != "on":
            raise
        need = -(-n_bufs * buf_size // (2 << 20))
        raise OSError(e.errno, f"xdp: a UMEM of {n_bufs} x {buf_size} B on 2 MiB hugepages needs {need} free "
                      f"hugepages ({e.strerror}); reserve them with: echo {need + 64} > /proc/sys/vm/nr_hugepages, "
                      f"or use hugepages=auto") from None
    pool = Mempool(n_bufs=n_bufs, buf_size=buf_size, headroom=headroom, data=region.buf)
    pool.region = region            # keep the mapping alive as long as the pool
    return pool


def pool_is_umem_capable(pool: Mempool) -> bool:
    data = pool.arrays.data
    return (pool.buf_size in (2048, 4096) and data.ctypes.data % mmap.PAGESIZE == 0
            and data.flags.c_contiguous and data.flags.writeable)


def _pow2(name: str, n: int) -> int:
    if n <= 0 or n & (n - 1):
        lo = 1 << max(0, n.bit_length() - 1)
        raise SpecError(f"xdp: {name}={n} is not a power of two (the kernel's ring index mask needs one); "
                        f"use {name}={lo} or {name}={lo * 2}")
    return n


def _ring_cfg(cfg: np.ndarray, first: int, lay) -> None:
    cfg[first:first + 5] = (lay.size - 1, lay.producer, lay.consumer, lay.flags, lay.desc)


class XdpPort(Port):
    def __init__(self, args: SpecArgs, pool: Mempool, spec: str):
        self.spec, self.pool = spec, pool
        self.dev = args.str("dev")
        self.queue = args.int("queue", 0, lo=0, hi=4095)
        mode = args.choice("mode", ("auto", "native", "generic"), "auto")
        zc = args.choice("zerocopy", ("auto", "on", "off"), "auto")
        try:
            ports = [int(p) for p in args.str("ports", "").split("/") if p]
        except ValueError:
            raise SpecError(f"xdp: ports={args.str('ports', '')!r}; expected UDP ports separated by '/', "
                            f"e.g. ports=14310/14311") from None
        groups = [g for g in args.str("groups", "").split("/") if g]
        ip = args.str("ip", "") or None
        rx_n = _pow2("rx", args.int("rx", 2048))
        tx_n = _pow2("tx", args.int("tx", 2048))
        fill_n = _pow2("fill", args.int("fill", 2048))
        comp_n = _pow2("comp", args.int("comp", 2048))
        huge = args.choice("hugepages", ("auto", "on", "off"), "auto")
        bind_wait = args.int("bind_wait", 10, lo=0, hi=600)
        args.finish()
        try:
            # validate the filter arguments before touching the kernel
            build_filter(0, ports, groups, ip)
        except ValueError as e:
            raise SpecError(f"xdp: {e}") from None

        self._att = None
        self.xsk = None
        self._umem_region = None
        self._ctl = None
        self.counters = Counters(EXTRA)
        self._closed = False
        try:
            self._open(ports, groups, ip, mode, zc, rx_n, tx_n, fill_n, comp_n, huge, bind_wait)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ setup
    def _open(self, ports, groups, ip, mode, zc, rx_n, tx_n, fill_n, comp_n, huge, bind_wait):
        dev = self.dev
        try:
            self.ifindex = socket.if_nametoindex(dev)
        except OSError:
            raise XdpSetupError(errno.ENODEV, f"xdp: interface {dev!r} not found; check the name with "
                                f"`ip link` (inside the right network namespace: `ip netns exec NS ...`)") from None
        self._ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # ioctls in this namespace
        hw = fcntl.ioctl(self._ctl.fileno(), _SIOCGIFHWADDR, struct.pack("16s16x", dev.encode()[:15]))
        self.mac = ":".join(f"{x:02x}" for x in hw[18:24])     # ifr_hwaddr.sa_data
        nq = _queues(self._ctl, dev)
        if nq is None:
            nq = self.queue + 1        # unknown: let bind() judge the queue id
        elif self.queue >= nq:
            raise XdpSetupError(errno.EINVAL, f"xdp: {dev} has {nq} RX queue(s), queue={self.queue} does not exist; "
                                f"use queue=0..{nq - 1} (`ethtool -l {dev}` shows/sets the count)")

        pool = self.pool
        self.shared_umem = pool_is_umem_capable(pool)
        if self.shared_umem:
            chunk, nframes = pool.buf_size, pool.size
            umem = pool.arrays.data[:nframes * chunk]
            need = fill_n + 1
            if nframes < need:
                raise XdpSetupError(errno.EINVAL, f"xdp: UMEM too small: the pool has {nframes} buffers but the FILL "
                                    f"ring alone needs {fill_n} (+ buffers for the application); use a pool of at least "
                                    f"{fill_n + tx_n} buffers (xdp.make_pool(n_bufs=...)) or a smaller fill=")
            ufree = np.zeros(1, np.int64)
        else:
            # Private UMEM: FILL frames, then TX frames (see datapath.py).
            chunk, nframes = 2048, fill_n + tx_n
            if pool.buf_size < 64:
                raise XdpSetupError(errno.EINVAL, f"xdp: pool buffers of {pool.buf_size} bytes cannot hold a frame")
            try:
                self._umem_region = SharedRegion.create(nframes * chunk, name="tickwire-umem", hugepages=huge)
            except OSError as e:
                hint = (f"; with hugepages=on it needs {-(-nframes * chunk // (2 << 20))} free 2 MiB hugepages "
                        f"(echo N > /proc/sys/vm/nr_hugepages) or use hugepages=auto") if huge == "on" else ""
                raise XdpSetupError(e.errno, f"xdp: cannot allocate the UMEM: {e.strerror or e}{hint}") from None
            umem = self._umem_region.buf[:nframes * chunk]
            ufree = np.arange(fill_n, nframes, dtype=np.int64)
        self.chunk, self.nframes = chunk, nframes
        self.umem_mode = "pool" if self.shared_umem else "copy-to-pool"
        self.hugepages = bool(getattr(getattr(pool, "region", None), "hugepages", False)) if self.shared_umem \
            else self._umem_region.hugepages

        self._att, self._att_new = Attachment.get(dev, self.ifindex, nq, (tuple(ports), tuple(groups), ip),
                                                  mode, self.queue)

        try:
            self.xsk = XskSocket(umem.ctypes.data, nframes * chunk, chunk, rx_n, tx_n, fill_n, comp_n)
        except PermissionError as e:
            raise XdpSetupError(e.errno, f"xdp: not allowed to open an AF_XDP socket ({e.strerror}): needs "
                                f"CAP_NET_RAW; {_CAPS_FIX}") from None
        except OSError as e:
            if e.errno in (errno.ENOMEM, errno.ENOBUFS, errno.EPERM):
                raise XdpSetupError(e.errno, f"xdp: UMEM registration failed ({e.strerror}): the locked-memory limit "
                                    f"is too low for {nframes * chunk} bytes; raise it (`ulimit -l unlimited`) or "
                                    f"grant CAP_IPC_LOCK") from None
            raise XdpSetupError(e.errno, f"xdp: AF_XDP socket setup failed: {e.strerror}; the kernel needs "
                                f"CONFIG_XDP_SOCKETS (check `tickwire doctor`)") from None
        xsk = self.xsk

        cfg = np.zeros(CFG_LEN, np.int64)
        cfg[C_FD], cfg[C_CHUNK], cfg[C_NFRAMES] = xsk.fileno(), chunk, nframes
        cfg[C_SHARED], cfg[C_UFREE_TOP] = int(self.shared_umem), len(ufree) if not self.shared_umem else 0
        cfg[C_RX_WAKEUP_EVERY] = 1
        _ring_cfg(cfg, 5, xsk.rx_l)
        _ring_cfg(cfg, 10, xsk.tx_l)
        _ring_cfg(cfg, 15, xsk.fill_l)
        _ring_cfg(cfg, 20, xsk.comp_l)
        kown = np.zeros(nframes, np.uint8)
        self.state = XdpState(cfg, self.counters.array, xsk.rx, xsk.tx, xsk.fill, xsk.comp, umem, ufree, kown)

        # Pre-fill the FILL ring before bind (the kernel may start receiving at once).
        if self.shared_umem:
            xdp_fill_refill(self.state, pool.arrays)
        else:
            lay = xsk.fill_l
            addrs = np.arange(fill_n, dtype=np.uint64) * np.uint64(chunk)
            xsk.fill[lay.desc:lay.desc + 8 * fill_n] = addrs.view(np.uint8)
            xsk.fill[lay.producer:lay.producer + 4] = np.array([fill_n], np.uint32).view(np.uint8)
            kown[:fill_n] = 1

        bind_flags = XDP_USE_NEED_WAKEUP | {"auto": 0, "on": XDP_ZEROCOPY, "off": XDP_COPY}[zc]
        try:
            self.bind_retries = bind_when_released(xsk, self.ifindex, self.queue, bind_flags, bind_wait)
        except OSError as e:
            if e.errno == errno.EOPNOTSUPP and zc == "on":
                raise XdpSetupError(e.errno, f"xdp: {self.dev} does not support AF_XDP zero-copy (its driver has no "
                                    f"XSK buffer pool; veth never does); use zerocopy=auto or zerocopy=off") from None
            if e.errno == errno.EBUSY:
                raise XdpSetupError(e.errno, f"xdp: queue {self.queue} of {self.dev} is still bound to another AF_XDP "
                                    f"socket after waiting {bind_wait} s for it to be released (bind_wait=); another "
                                    f"process holds it: stop that program, or pick another queue=") from None
            raise XdpSetupError(e.errno, f"xdp: binding the AF_XDP socket to {self.dev} queue {self.queue} failed: "
                                f"{e.strerror}") from None
        self.zerocopy = xsk.zerocopy_active()
        cfg[C_RX_WAKEUP_EVERY] = 1 if self.zerocopy else 256
        self._att.add_socket(self.queue, xsk.fileno())
        if self._att_new:
            self._att.attach(mode)
        self.mode = self._att.mode

    # ------------------------------------------------------------------ control plane
    @property
    def info(self) -> dict:
        return {"dev": self.dev, "queue": self.queue, "mode": getattr(self, "mode", None),
                "zerocopy": getattr(self, "zerocopy", False), "umem": getattr(self, "umem_mode", None),
                "hugepages": getattr(self, "hugepages", False), "frames": getattr(self, "nframes", 0),
                "chunk": getattr(self, "chunk", 0)}

    @property
    def link_up(self) -> bool:
        """IFF_UP and IFF_RUNNING (carrier) on the device, via SIOCGIFFLAGS."""
        if getattr(self, "_ctl", None) is None:
            return False
        try:
            res = fcntl.ioctl(self._ctl.fileno(), _SIOCGIFFLAGS, struct.pack("16sH14x", self.dev.encode()[:15], 0))
        except OSError:
            return False
        flags = struct.unpack_from("H", res, 16)[0]
        return bool(flags & _IFF_UP) and bool(flags & _IFF_RUNNING)

    def add_multicast(self, mac: str) -> None:
        """Let the NIC's MAC filter accept a multicast group's address (SIOCADDMULTI).
        The XDP filter must also redirect the group: list it in ``groups=``."""
        raw = bytes(int(x, 16) for x in mac.split(":"))
        fcntl.ioctl(self._ctl.fileno(), _SIOCADDMULTI,
                    struct.pack("16sH6s8x", self.dev.encode()[:15], socket.AF_UNSPEC, raw))
        self._multi = getattr(self, "_multi", []) + [raw]

    def poll(self) -> None:
        """Fold the kernel's XDP_STATISTICS into the port counters (they are absolute)."""
        if self.xsk is None or self.xsk.sock is None:
            return
        for name, v in self.xsk.statistics().items():
            self.counters.array[self.counters.index(name)] = v

    def reap(self) -> int:
        """Kick pending TX and take back sent frames now (tx_burst does both too)."""
        xdp_tx_kick(self.state, self.pool.arrays)
        return xdp_reap_completions(self.state, self.pool.arrays)

    def stats(self) -> dict[str, int]:
        self.poll()
        return self.counters.as_dict()

    def _return_kernel_frames(self) -> None:
        """Shared UMEM: frames the kernel still holds (FILL, RX, TX, in between) belong to
        nobody once the socket is gone; free them so the pool's invariant
        (free + in flight == size) holds. ``kown`` says exactly which ones."""
        xdp_reap_completions(self.state, self.pool.arrays)
        kown = self.state.kown
        held = np.flatnonzero(kown).astype(np.int32)
        kown[:] = 0
        self.pool.free_burst(held)

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        # Out of the XSKMAP first (and the program detached if we were its last queue),
        # so the kernel stack gets the traffic back before the socket goes.
        if self._att is not None:
            self._att.remove_socket(self.queue)
            self._att = None
        try:
            self.poll()
        except OSError:
            pass
        if getattr(self, "shared_umem", False) and self.state is not None and self.xsk is not None:
            self._return_kernel_frames()
        self.state = None
        if self.xsk is not None:
            self.xsk.close()
            self.xsk = None
        if getattr(self, "_ctl", None) is not None:
            for raw in getattr(self, "_multi", []):
                try:
                    fcntl.ioctl(self._ctl.fileno(), _SIOCDELMULTI,
                                struct.pack("16sH6s8x", self.dev.encode()[:15], socket.AF_UNSPEC, raw))
                except OSError:
                    pass
            self._multi = []
            self._ctl.close()
            self._ctl = None
        if self._umem_region is not None:
            self._umem_region.close()
            self._umem_region = None


def open(args: SpecArgs, pool, spec: str) -> XdpPort:  # noqa: A001 - the driver contract's name
    return XdpPort(args, pool, spec)
