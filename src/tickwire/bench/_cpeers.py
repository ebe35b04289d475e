"""C reference peers for the xdp benchmark, kept as source in the project and built
with gcc on first use (cached by source hash under $XDG_CACHE_HOME/tickwire).

One binary, four modes (all plain kernel UDP sockets, busy-polling non-blocking
sockets unless stated):
  rtt    DST PORT COUNT WARMUP SIZE OUTFILE  -- echo client: COUNT timed round trips
                                               (CLOCK_MONOTONIC), RTTs in ns as int64 to OUTFILE
  echo   BIND_IP PORT COUNT IDLE_MS          -- echo server: reply to each datagram's sender
  blast  DST PORT SECONDS SIZE               -- sendmmsg() flood, 64 per call; prints "sent N secs"
  sink   BIND_IP PORT IDLE_MS                -- recvmmsg() counter; prints "recv N secs"
  xskecho XSK_FD UMEM_FD UMEM_LEN UDP_PORT COUNT IDLE_MS NRX NTX NFILL NCOMP OFFS(16)
                                             -- the C AF_XDP echo reference: runs on an AF_XDP
                                                socket tickwire's xdp: port set up (rings,
                                                UMEM, program) and handed over by fd; the same
                                                in-place MAC/IP/port swap as the njit echo, frames
                                                recycled RX -> TX -> COMPLETION -> FILL as in
                                                libxdp's xdpsock sample.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

C_SOURCE = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int udp_sock(const char *ip, int port, int nonblock) {
    int fd = socket(AF_INET, SOCK_DGRAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) { perror("socket"); exit(2); }
    int one = 1; setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int big = 8 << 20; setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    if (ip) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        inet_pton(AF_INET, ip, &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); exit(2); }
    }
    return fd;
}

static struct sockaddr_in dst_addr(const char *ip, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static int rtt(char **av) {
    struct sockaddr_in d = dst_addr(av[0], atoi(av[1]));
    long count = atol(av[2]), warm = atol(av[3]); int size = atoi(av[4]);
    int fd = udp_sock(NULL, 0, 1);
    if (connect(fd, (struct sockaddr *)&d, sizeof d) < 0) { perror("connect"); return 2; }
    int64_t *out = calloc(count, sizeof *out);
    char buf[2048] = {0}, in[2048];
    long lost = 0, lost_run = 0;
    for (long i = -warm; i < count; i++) {
        memcpy(buf, &i, sizeof i);
        int64_t t0 = now_ns();
        while (send(fd, buf, size, 0) < 0) if (errno != EAGAIN && errno != ENOBUFS) { perror("send"); return 2; }
        for (;;) {
            ssize_t r = recv(fd, in, sizeof in, 0);
            if (r >= (ssize_t)sizeof i && memcmp(in, &i, sizeof i) == 0) { lost_run = 0; break; }
            if (r < 0 && errno != EAGAIN) { perror("recv"); return 2; }
            if (now_ns() - t0 > 200000000LL) { lost++; lost_run++; break; }   /* 200 ms: count as lost, go on */
        }
        if (lost_run >= 25) {   /* 5 s of silence: the server is gone, say so instead of waiting for ever */
            fprintf(stderr, "rtt: no reply to the last 25 datagrams (round trip %ld, %ld lost in all)\n", i, lost);
            return 3;
        }
        if (i >= 0) out[i] = now_ns() - t0;
    }
    FILE *f = fopen(av[5], "wb"); fwrite(out, sizeof *out, count, f); fclose(f);
    printf("lost %ld\n", lost);
    return 0;
}

static int echo(char **av) {
    int fd = udp_sock(av[0], atoi(av[1]), 1);
    long count = atol(av[2]); int64_t idle = atol(av[3]) * 1000000LL;
    char buf[2048]; struct sockaddr_in from; socklen_t fl;
    long n = 0; int64_t last = now_ns();
    printf("ready\n"); fflush(stdout);
    while (n < count) {
        fl = sizeof from;
        ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (r < 0) { if (now_ns() - last > idle) break; continue; }
        sendto(fd, buf, r, 0, (struct sockaddr *)&from, fl);
        n++; last = now_ns();
    }
    printf("echoed %ld\n", n);
    return 0;
}

static int blast(char **av) {
    struct sockaddr_in d = dst_addr(av[0], atoi(av[1]));
    double secs = atof(av[2]); int size = atoi(av[3]);
    int fd = udp_sock(NULL, 0, 0);
    enum { B = 64 };
    static char bufs[B][2048]; struct mmsghdr m[B]; struct iovec v[B];
    memset(m, 0, sizeof m);
    for (int i = 0; i < B; i++) {
        v[i].iov_base = bufs[i]; v[i].iov_len = size;
        m[i].msg_hdr.msg_iov = &v[i]; m[i].msg_hdr.msg_iovlen = 1;
        m[i].msg_hdr.msg_name = &d; m[i].msg_hdr.msg_namelen = sizeof d;
    }
    long sent = 0; int64_t t0 = now_ns(), end = t0 + (int64_t)(secs * 1e9);
    while (now_ns() < end) {
        for (int i = 0; i < B; i++) { long s = sent + i; memcpy(bufs[i], &s, sizeof s); }
        int r = sendmmsg(fd, m, B, 0);
        if (r > 0) sent += r;
    }
    printf("sent %ld %.6f\n", sent, (now_ns() - t0) / 1e9);
    return 0;
}

static int sink(char **av) {
    int fd = udp_sock(av[0], atoi(av[1]), 1);
    int64_t idle = atol(av[2]) * 1000000LL;
    enum { B = 64 };
    static char bufs[B][2048]; struct mmsghdr m[B]; struct iovec v[B];
    memset(m, 0, sizeof m);
    for (int i = 0; i < B; i++) {
        v[i].iov_base = bufs[i]; v[i].iov_len = 2048;
        m[i].msg_hdr.msg_iov = &v[i]; m[i].msg_hdr.msg_iovlen = 1;
    }
    long n = 0; int64_t first = 0, last = now_ns();
    printf("ready\n"); fflush(stdout);
    for (;;) {
        int r = recvmmsg(fd, m, B, 0, NULL);
        int64_t t = now_ns();
        if (r > 0) { if (!first) first = t; n += r; last = t; }
        else if (t - last > (first ? idle : 30000000000LL)) break;   /* the flood's end, or it never started */
    }
    printf("recv %ld %.6f\n", n, first ? (last - first) / 1e9 : 0.0);
    return 0;
}

/* ---- AF_XDP echo over rings set up by tickwire (include/uapi/linux/if_xdp.h) ---- */
#include <sys/mman.h>
struct ring { uint32_t *prod, *cons, *flags; void *desc; uint32_t mask; };
struct xdesc { uint64_t addr; uint32_t len, options; };
#define LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static void map_ring(struct ring *r, int fd, uint64_t pgoff, uint32_t n, uint32_t entry, long *o) {
    size_t len = o[3] + (size_t)n * entry;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, pgoff);
    if (m == MAP_FAILED) { perror("mmap ring"); exit(2); }
    r->prod = (uint32_t *)(m + o[0]); r->cons = (uint32_t *)(m + o[1]);
    r->flags = (uint32_t *)(m + o[2]); r->desc = m + o[3]; r->mask = n - 1;
}

static int xskecho(char **av) {
    int fd = atoi(av[0]), ufd = atoi(av[1]);
    size_t ulen = atol(av[2]); int port = atoi(av[3]); long count = atol(av[4]);
    int64_t idle = atol(av[5]) * 1000000LL;
    uint32_t n[4]; long o[16];
    for (int i = 0; i < 4; i++) n[i] = atoi(av[6 + i]);
    for (int i = 0; i < 16; i++) o[i] = atol(av[10 + i]);
    unsigned char *umem = mmap(NULL, ulen, PROT_READ | PROT_WRITE, MAP_SHARED, ufd, 0);
    if (umem == MAP_FAILED) { perror("mmap umem"); return 2; }
    struct ring rx, tx, fq, cq;
    map_ring(&rx, fd, 0, n[0], 16, o);
    map_ring(&tx, fd, 0x80000000ULL, n[1], 16, o + 4);
    map_ring(&fq, fd, 0x100000000ULL, n[2], 8, o + 8);
    map_ring(&cq, fd, 0x180000000ULL, n[3], 8, o + 12);
    unsigned char ph = port >> 8, pl = port & 0xff;
    long done = 0; int64_t last = now_ns();
    printf("ready\n"); fflush(stdout);
    while (done < count) {
        /* completions back to FILL */
        uint32_t cc = *cq.cons, cp = LOAD_ACQ(cq.prod), fp = *fq.prod;
        for (uint32_t i = cc; i != cp; i++, fp++)
            ((uint64_t *)fq.desc)[fp & fq.mask] = ((uint64_t *)cq.desc)[i & cq.mask];
        if (cc != cp) { STORE_REL(fq.prod, fp); STORE_REL(cq.cons, cp); }
        uint32_t rc = *rx.cons, rp = LOAD_ACQ(rx.prod);
        if (rc == rp) { if (now_ns() - last > idle) break; continue; }
        uint32_t tp = *tx.prod;
        for (uint32_t i = rc; i != rp; i++) {
            struct xdesc *d = &((struct xdesc *)rx.desc)[i & rx.mask];
            unsigned char *f = umem + d->addr, t;
            if (d->len >= 42 && f[12] == 8 && f[13] == 0 && f[14] == 0x45 && f[23] == 17 && f[36] == ph && f[37] == pl) {
                for (int j = 0; j < 6; j++) { t = f[j]; f[j] = f[6 + j]; f[6 + j] = t; }
                for (int j = 0; j < 4; j++) { t = f[26 + j]; f[26 + j] = f[30 + j]; f[30 + j] = t; }
                for (int j = 0; j < 2; j++) { t = f[34 + j]; f[34 + j] = f[36 + j]; f[36 + j] = t; }
                ((struct xdesc *)tx.desc)[tp++ & tx.mask] = *d;
                done++;
            } else {   /* not ours: straight back to FILL */
                uint32_t p = *fq.prod;
                ((uint64_t *)fq.desc)[p & fq.mask] = d->addr;
                STORE_REL(fq.prod, p + 1);
            }
        }
        STORE_REL(rx.cons, rp);
        STORE_REL(tx.prod, tp);
        if (LOAD_ACQ(tx.flags) & 1)
            while (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno == EAGAIN) {}
        last = now_ns();
    }
    printf("echoed %ld\n", done);
    return 0;
}

int main(int ac, char **av) {
    if (ac < 2) return 2;
    if (!strcmp(av[1], "rtt") && ac == 8) return rtt(av + 2);
    if (!strcmp(av[1], "echo") && ac == 6) return echo(av + 2);
    if (!strcmp(av[1], "blast") && ac == 6) return blast(av + 2);
    if (!strcmp(av[1], "sink") && ac == 5) return sink(av + 2);
    if (!strcmp(av[1], "xskecho") && ac == 28) return xskecho(av + 2);
    fprintf(stderr, "usage: rtt|echo|blast|sink ...\n");
    return 2;
}
"""


def build() -> str:
    """Compile (once per source version) and return the binary's path."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise OSError("gcc not found: the C reference peers are built at run time (apt install gcc libc6-dev)")
    tag = hashlib.sha256(C_SOURCE.encode()).hexdigest()[:12]
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "tickwire")
    os.makedirs(cache, exist_ok=True)
    exe = os.path.join(cache, f"udp_peers-{tag}")
    if not os.path.exists(exe):
        src = exe + ".c"
        with open(src, "w") as f:
            f.write(C_SOURCE)
        tmp = exe + f".tmp{os.getpid()}"
        subprocess.run([gcc, "-O2", "-Wall", "-o", tmp, src], check=True, capture_output=True)
        os.replace(tmp, exe)
    return exe
