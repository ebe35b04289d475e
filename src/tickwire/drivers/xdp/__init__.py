"""AF_XDP driver (``xdp:`` ports): pure Python + Numba, no libbpf/libxdp/compiler.

Modules: ``bpf`` (the bpf() syscall), ``asm`` (eBPF assembler), ``program`` (the
filter), ``xsk`` (socket, UMEM, rings), ``datapath`` (njit rx/tx bursts),
``attach`` (one program per device, shared by its queues' sockets), ``port``
(spec parsing, setup, teardown, errors).
"""

from .port import XdpPort, XdpSetupError, make_pool, open, pool_is_umem_capable  # noqa: F401
