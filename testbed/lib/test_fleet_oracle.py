#!/usr/bin/env python3
"""Unit tests of the chaos oracle's invariant logic (fleet_oracle.TorWatch), fed synthetic ToR
samples instead of a lab: python3 testbed/lib/test_fleet_oracle.py"""
import io
import os
import sys
import unittest
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet_oracle  # noqa: E402


class Feed:
    """A ToR client returning the samples it was given, one per step."""

    def __init__(self):
        self.next = None

    def sample(self, _prefix):
        return self.next


def state(run=None, forced=(), stop=None, cut=None, tor_up=True, n=3):
    run = run if run is not None else {i: True for i in range(1, n + 1)}
    return {"tor": {"bird": tor_up},
            "node": {i: {"run": run.get(i, True), "forced": i in forced,
                         "stop": (stop or {}).get(i, 0), "cut": (cut or {}).get(i, "none")}
                     for i in range(1, n + 1)}}


class OracleTest(unittest.TestCase):
    def setUp(self):
        args = SimpleNamespace(prefix="203.0.113.10/32", budget_ms=5000, stop_bound_ms=30000)
        self.feed = Feed()
        self.out = io.StringIO()
        self.w = fleet_oracle.TorWatch("bird", self.feed, args, self.out)
        self.w.prev_est = set()
        self.t = 1_000_000

    def step(self, paths, est, st=None):
        self.feed.next = (paths, set(est)) if paths is not None else None
        self.w.step(self.t, st or state())
        self.t += 100

    def test_withdrawal_of_last_path_with_session_up_breaks_i1(self):
        self.step({1: True}, [1, 2, 3])
        self.step({}, [1, 2, 3])
        self.step({}, [1, 2, 3])
        self.assertEqual(self.w.i1, 1)

    def test_session_drop_is_not_a_withdrawal(self):
        self.step({1: False}, [1, 2, 3])
        self.step({}, [2, 3])
        self.step({}, [2, 3])
        self.assertEqual(self.w.i1, 0)
        # ... and is seen down only one sample later: still not a withdrawal.
        self.step({2: False}, [1, 2, 3])
        self.step({}, [1, 2, 3])
        self.step({}, [1, 3])
        self.assertEqual(self.w.i1, 0)

    def test_forced_crashed_and_overdue_stops_are_excused(self):
        for st in (state(forced=[1]), state(run={1: False}),
                   state(stop={1: self.t - 40000})):
            self.w.i1 = 0
            self.step({1: False}, [1, 2])
            self.step({}, [1, 2], st)
            self.step({}, [1, 2], st)
            self.assertEqual(self.w.i1, 0, st)
            self.step({1: False}, [1, 2])

    def test_recent_planned_stop_is_not_excused(self):
        st = state(stop={1: self.t - 1000})
        self.step({1: False}, [1, 2])
        self.step({}, [1, 2], st)
        self.step({}, [1, 2], st)
        self.assertEqual(self.w.i1, 1)

    def test_absence_beyond_budget_breaks_i2_per_sample(self):
        self.step({1: False}, [1, 2])
        for _ in range(60):  # 6 s absent with sessions up from running nodes
            self.step({}, [1, 2], state(run={1: False}))
        self.assertGreater(self.w.i2, 0)
        self.assertLessEqual(self.w.i2, 10)
        self.assertGreaterEqual(self.w.longest_q, 5900)

    def test_no_i2_while_only_cut_or_forced_nodes_have_sessions(self):
        self.step({1: False}, [1, 2])
        st = state(run={1: False, 3: False}, forced=[2], cut={})
        for _ in range(80):
            self.step({}, [2], st)
        st = state(run={1: False, 2: False}, cut={3: "bird"})
        for _ in range(80):
            self.step({}, [3], st)
        self.assertEqual(self.w.i2, 0)
        self.assertGreaterEqual(self.w.longest_raw, 15000)

    def test_tor_down_resets_the_clocks(self):
        self.step({1: False}, [1, 2])
        for _ in range(40):
            self.step({}, [1, 2], state(run={1: False}))
        self.step(None, [])  # ToR not answering (restart)
        for _ in range(40):
            self.step({}, [1, 2], state(run={1: False}))
        self.assertEqual(self.w.i2, 0)
        self.assertEqual(self.w.i1, 0)

    def test_frr_peer_address_maps_to_node(self):
        self.assertEqual(fleet_oracle.Frr.node_of("198.51.100.6"), 1)
        self.assertEqual(fleet_oracle.Frr.node_of("198.51.100.118"), 8)
        self.assertIsNone(fleet_oracle.Frr.node_of("198.51.100.7"))
        self.assertIsNone(fleet_oracle.Frr.node_of("garbage"))


if __name__ == "__main__":
    unittest.main()
