"""Connection states of RFC 9293 §3.3.2 (figure 5) and TCP header flags (§3.1)."""

CLOSED, LISTEN, SYN_SENT, SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, \
    CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT = range(11)

NAMES = ("CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
         "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT")

# States in which the receive side still accepts data (RFC 9293 §3.10.7.4, seventh step).
RECV_DATA_STATES = (ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2)
# States in which the application may still queue data to send.
SEND_DATA_STATES = (SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT)
SYNCHRONIZED = (ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT)

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80


def flag_names(flags: int) -> str:
    return "|".join(n for b, n in ((SYN, "SYN"), (ACK, "ACK"), (FIN, "FIN"), (RST, "RST"),
                                   (PSH, "PSH"), (URG, "URG")) if flags & b) or "-"
