"""House rule (notes/numba-hot-path.md §5): a uint64/int64 mix silently becomes float64.
Compile the order/sim/engine per-event functions fresh (private cache dir, so the types
are inspectable) by running the in-process engine<->venue harness, and check that no
float64 appears in their typed IR."""

import pytest

from conftest import float_uses_after_fresh_compile

pytestmark = pytest.mark.slow

SETUP = '''
import sys
sys.path.insert(0, "tests/engine")
from inproc import Harness
h = Harness("market_maker", dict(instr=0, tick=250_000_000, half_spread=1))
h.connect(); h.run(200); h.snapshot()
from tickwire.engine import core, warm
warm.warm_run(h.E, warm.new_warm_state(h.E), 0, h.now)
from tickwire.order import risk, orders, session, oe_codec
from tickwire.sim import matching, publisher, flow, venue, gateway_session
'''

FUNCTIONS = """
    core.md_packet, core.md_begin, core.md_instrument, core.act_on_intents, core.oe_input_r, core.oe_timers_r, core._trades, core._business,
    core.refresh_instrument, core._record,
    risk.check_new_dry, risk.check_replace, risk.check_cancel,
    orders.submit_new_dry, orders.submit_replace, warm.warm_run, warm.warm_order, warm.warm_receive,
    orders.submit_cancel, orders.reconcile, session.client_on_frame, session.client_poll,
    oe_codec.frame_check, oe_codec.enc_exec, matching.new_order,
    matching.cancel_order, matching.replace_order, matching._match, publisher.pub_side_diff,
    publisher.pub_book_entry, publisher.snapshot_packet, flow.flow_step, venue.venue_flow,
    venue.venue_oe_input, gateway_session.server_on_frame, gateway_session.journal_put"""


# risk.check_new, orders.submit_new and oe_codec.enc_new_order are inlined into runtime-free
# callers (drivers/port.into_runtime_free_callers) and compiled nowhere on their own here:
# their typed IR is act_on_intents'.
def test_no_float64_in_per_event_functions(tmp_path):
    found = float_uses_after_fresh_compile(tmp_path, SETUP, FUNCTIONS, timeout=3000)
    assert len(found) == 36
    assert {k: v for k, v in found.items() if v} == {}
