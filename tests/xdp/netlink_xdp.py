"""Legacy XDP attach through rtnetlink (RTM_SETLINK + nested IFLA_XDP), for tests only:
it makes the "someone else's program is already attached" situation without clang/ip-obj."""

import socket
import struct

NETLINK_ROUTE, RTM_SETLINK, NLM_F_REQUEST, NLM_F_ACK = 0, 19, 1, 4
IFLA_XDP, IFLA_XDP_FD, IFLA_XDP_FLAGS, NLA_F_NESTED = 43, 1, 3, 0x8000
NLMSG_ERROR = 2


def attach_xdp_netlink(dev: str, prog_fd: int, flags: int) -> None:
    ifindex = socket.if_nametoindex(dev)
    fd_attr = struct.pack("<HHi", 8, IFLA_XDP_FD, prog_fd)
    fl_attr = struct.pack("<HHI", 8, IFLA_XDP_FLAGS, flags)
    nested = struct.pack("<HH", 4 + len(fd_attr) + len(fl_attr), IFLA_XDP | NLA_F_NESTED) + fd_attr + fl_attr
    ifinfo = struct.pack("<BxHiII", socket.AF_UNSPEC, 0, ifindex, 0, 0)
    body = ifinfo + nested
    msg = struct.pack("<IHHII", 16 + len(body), RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as s:
        s.bind((0, 0))
        s.send(msg)
        reply = s.recv(65536)
    _, mtype = struct.unpack_from("<IH", reply)
    if mtype == NLMSG_ERROR:
        err = struct.unpack_from("<i", reply, 16)[0]
        if err:
            raise OSError(-err, f"RTM_SETLINK IFLA_XDP on {dev} failed")
