"""One filter program per interface, shared by the ports of its queues.

A NIC has one XDP program; with one AF_XDP socket per queue (the multi-queue
layout), every queue's socket goes into the same XSKMAP (key = queue id, which
the program reads from ``ctx->rx_queue_index``). This module keeps, per process,
one ``Attachment`` per (network namespace, ifindex): the map, the program and the
bpf_link, plus the set of queues using it. The first port creates and attaches it,
later ports of the same device add their socket to the map, the last one to close
detaches it. Attachment is through BPF_LINK_CREATE, so the kernel also detaches it
when the process dies (notes/af_xdp.md §4).
"""

from __future__ import annotations

import errno
import os

from . import bpf
from .program import build_filter

_CAPS_FIX = ("run as root, or grant the capabilities: "
             "setcap cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep $(readlink -f $(which python3))")

_REGISTRY: dict[tuple[int, int], "Attachment"] = {}


class XdpSetupError(OSError):
    """Opening an xdp: port failed; the message names the cause and the fix."""


def netns_id() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


class Attachment:
    def __init__(self, key, dev, ifindex, nqueues, fkey):
        self.key, self.dev, self.ifindex, self.fkey = key, dev, ifindex, fkey
        self.map_fd = self.prog_fd = self.link_fd = -1
        self.mode = None
        self.queues: set[int] = set()
        ports, groups, ip = fkey
        try:
            self.map_fd = bpf.map_create_xskmap(nqueues)
            self.prog_fd = bpf.prog_load_xdp(build_filter(self.map_fd, ports, groups, ip))
        except bpf.BpfError as e:
            self.close()
            if e.errno == errno.EPERM:
                raise XdpSetupError(e.errno, f"xdp: not allowed to load an eBPF program ({e.strerror}): "
                                    f"needs CAP_BPF and CAP_NET_ADMIN; {_CAPS_FIX}") from None
            raise XdpSetupError(e.errno, f"xdp: kernel refused the filter program: {e}") from None

    @classmethod
    def get(cls, dev, ifindex, nqueues, fkey, mode, queue) -> tuple["Attachment", bool]:
        """The device's attachment (new=True if this call made it; it is attached later)."""
        key = (netns_id(), ifindex)
        att = _REGISTRY.get(key)
        if att is None:
            return cls(key, dev, ifindex, nqueues, fkey), True
        if att.fkey != fkey:
            raise XdpSetupError(errno.EEXIST, f"xdp: {dev} already carries this process's filter for "
                                f"ports={'/'.join(map(str, att.fkey[0])) or '-'} groups={'/'.join(att.fkey[1]) or '-'} "
                                f"ip={att.fkey[2] or '-'}; a device has one XDP program, so open all its queues "
                                f"with the same ports=/groups=/ip=")
        if mode != "auto" and mode != att.mode:
            raise XdpSetupError(errno.EEXIST, f"xdp: {dev} is attached in {att.mode} mode by another port of this "
                                f"process; use mode={att.mode} or mode=auto")
        if queue in att.queues:
            raise XdpSetupError(errno.EBUSY, f"xdp: queue {queue} of {dev} is already open in this process; "
                                f"close that port first or pick another queue=")
        return att, False

    def add_socket(self, queue: int, fd: int) -> None:
        try:
            bpf.map_update_u32(self.map_fd, queue, fd)
        except bpf.BpfError as e:
            hint = " (the queue id is beyond the queue count seen when the first port opened)" \
                if e.errno == errno.E2BIG else ""
            raise XdpSetupError(e.errno, f"xdp: could not put the socket into the XSKMAP: {e}{hint}") from None
        self.queues.add(queue)

    def remove_socket(self, queue: int) -> None:
        """Take the queue out of the map first (its traffic falls back to XDP_PASS), and
        detach the program when the last queue goes."""
        if queue in self.queues:
            self.queues.discard(queue)
            try:
                bpf.map_delete_u32(self.map_fd, queue)
            except OSError:
                pass
        if not self.queues:
            self.close()

    def attach(self, mode: str) -> None:
        tries = {"native": [("native", bpf.XDP_FLAGS_DRV_MODE)], "generic": [("generic", bpf.XDP_FLAGS_SKB_MODE)],
                 "auto": [("native", bpf.XDP_FLAGS_DRV_MODE), ("generic", bpf.XDP_FLAGS_SKB_MODE)]}[mode]
        dev = self.dev
        last = None
        for name, flags in tries:
            try:
                self.link_fd = bpf.link_create_xdp(self.prog_fd, self.ifindex, flags)
                self.mode = name
                _REGISTRY[self.key] = self
                return
            except bpf.BpfError as e:
                last = e
                if e.errno in (errno.EBUSY, errno.EEXIST):
                    raise XdpSetupError(e.errno, f"xdp: {dev} already has an XDP program attached "
                                        f"(`ip link show {dev}` lists it); remove it with "
                                        f"`ip link set dev {dev} xdp off` (or `xdpgeneric off`), or stop the "
                                        f"program that owns it") from None
                if e.errno == errno.EPERM:
                    raise XdpSetupError(e.errno, f"xdp: not allowed to attach XDP ({e.strerror}); {_CAPS_FIX}") from None
        if last.errno == errno.ENOSPC:
            raise XdpSetupError(last.errno, f"xdp: {dev} refused native XDP (ENOSPC): a veth needs at least as "
                                f"many RX queues as its peer has TX queues; recreate the pair with equal "
                                f"numrxqueues/numtxqueues on both ends, or use mode=generic")
        raise XdpSetupError(last.errno, f"xdp: attaching the program to {dev} in {mode} mode failed: "
                            f"{last.strerror}; try mode=generic (works on every driver)")

    def close(self) -> None:
        # The link first: closing it detaches the program, so the kernel stack gets the traffic back.
        for attr in ("link_fd", "prog_fd", "map_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)
        if _REGISTRY.get(self.key) is self:
            del _REGISTRY[self.key]
