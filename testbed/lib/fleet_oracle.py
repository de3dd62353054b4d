#!/usr/bin/env python3
"""Fleet guard oracle: sample both ToRs' RIB for the VIP every INTERVAL ms and check the guard's
two invariants (issue 17).

Usage: fleet_oracle.py --run-dir DIR --prefix P --nodes N [--interval-ms 100] [--budget-ms 5000]
                       [--stop-bound-ms 30000] [--duration-s S]

Reads (all under DIR, written by testbed/lib/fleet-guard.sh):
  bird/bird.ctl        BIRD's CLI socket (one connection, reopened after a ToR restart)
  frr/bgpd.vty         FRR bgpd's vty socket (the vtysh protocol: command + NUL, reply ends
                       with three NULs and a status byte); no vtysh process per sample
  chaos-state          the lab's intent, rewritten atomically by the driver: "tor NAME up=0|1"
                       and "node I run=0|1 forced=0|1 stop=MS cut=none|bird|frr|both" (stop:
                       epoch ms of a SIGTERM not yet completed, 0 otherwise; cut: links dropped
                       by nftables)
  faults.log           "MS kind args": each fault is copied into the timeline with the samples
                       at that moment and one second later
  oracle.stop          when it appears the oracle writes its summary and exits
Writes DIR/oracle.log (timeline: every change of the path set at a ToR, faults, violations with
the samples before and after) and DIR/oracle-summary.json.

Paths are attributed by the session they came in on (BIRD protocol nodeI, FRR peer address), so
the oracle needs no identity community and still works when a ToR strips communities. A path is
marked when it carries 65101:666.

I1: at a ToR the prefix goes from present to absent while some node whose path was among the
    last ones runs, has its session to that ToR established (in this sample and the next), was
    not force-drained and is not in a planned stop older than --stop-bound-ms: that node withdrew
    the last path.
I2: while the ToR is up and some running, not force-drained node whose link to it is not cut
    has an established session to it, the prefix is absent there for at most --budget-ms (settle + 2 s); every sample beyond
    that breaks I2.
"""
import argparse
import collections
import json
import os
import re
import socket
import sys
import time

MARK = "65101:666"


def now_ms():
    return int(time.time() * 1000)


class Bird:
    END = re.compile(rb"^\d{4} ", re.M)

    def __init__(self, path):
        self.path = path
        self.sock = None

    def _ask(self, cmd):
        if self.sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1.0)
            s.connect(self.path)
            self.sock = s
            self._read()  # "0001 BIRD x.y ready."
        self.sock.sendall(cmd.encode() + b"\n")
        return self._read().decode(errors="replace")

    def _read(self):
        buf = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("BIRD closed its socket")
            buf += chunk
            if self.END.search(buf):
                return buf

    def sample(self, prefix):
        """({node: marked}, {established nodes}) or None when BIRD does not answer."""
        try:
            routes = self._ask("show route %s all" % prefix)
            protos = self._ask("show protocols")
        except (OSError, ConnectionError):
            self.close()
            return None
        paths = {}
        cur = None
        for line in routes.splitlines():
            m = re.search(r"unicast \[node(\d+)\b", line)
            if m:
                cur = int(m.group(1))
                paths[cur] = False
            elif cur is not None and "BGP.community" in line and "(65101,666)" in line:
                paths[cur] = True
        est = set()
        for line in protos.splitlines():
            m = re.match(r"^(?:\d{4}-)?\s*node(\d+)\s+BGP\s", line)
            if m and "Established" in line:
                est.add(int(m.group(1)))
        return paths, est

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None


class Frr:
    def __init__(self, path):
        self.path = path
        self.sock = None

    def _ask(self, cmd):
        if self.sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1.0)
            s.connect(self.path)
            self.sock = s
        self.sock.sendall(cmd.encode() + b"\0")
        buf = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("bgpd closed its vty socket")
            buf += chunk
            if len(buf) >= 4 and buf[-4:-1] == b"\0\0\0":
                return buf[:-4].decode(errors="replace")

    @staticmethod
    def node_of(addr):
        try:
            last = int(addr.rsplit(".", 1)[1])
        except (IndexError, ValueError):
            return None
        return (last - 6) // 16 + 1 if (last - 6) % 16 == 0 else None

    def sample(self, prefix):
        try:
            routes = self._ask("show bgp ipv4 unicast %s json" % prefix)
            summ = self._ask("show bgp ipv4 unicast summary json")
        except (OSError, ConnectionError):
            self.close()
            return None
        paths = {}
        try:
            d = json.loads(routes) if routes.strip() else {}
        except ValueError:
            d = {}
        for p in d.get("paths", []):
            n = self.node_of(p.get("peer", {}).get("peerId", ""))
            if n is None:
                continue
            paths[n] = MARK in p.get("community", {}).get("string", "")
        est = set()
        try:
            s = json.loads(summ) if summ.strip() else {}
        except ValueError:
            s = {}
        for addr, v in s.get("peers", {}).items():
            n = self.node_of(addr)
            if n is not None and v.get("state") == "Established":
                est.add(n)
        return paths, est

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None


def read_state(path):
    st = {"tor": {}, "node": {}}
    try:
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) < 2:
                    continue
                kv = dict(x.split("=", 1) for x in w[2:] if "=" in x)
                if w[0] == "tor":
                    st["tor"][w[1]] = kv.get("up") == "1"
                elif w[0] == "node":
                    st["node"][int(w[1])] = {"run": kv.get("run") == "1",
                                             "forced": kv.get("forced") == "1",
                                             "stop": int(kv.get("stop", "0") or 0),
                                             "cut": kv.get("cut", "none")}
    except (OSError, ValueError):
        pass
    return st


def ts(t):
    """Epoch ms and UTC wall time, as the lab's logs show it."""
    return "%d %s.%03d" % (t, time.strftime("%H:%M:%S", time.gmtime(t // 1000)), t % 1000)


def fmt(sample):
    """'paths 1 2* 3 | est 1-8' (* = marked)."""
    if sample is None:
        return "no answer"
    paths, est = sample
    p = " ".join("%d%s" % (n, "*" if m else "") for n, m in sorted(paths.items())) or "-"
    e = ",".join(str(n) for n in sorted(est)) or "-"
    return "paths %s | sessions %s" % (p, e)


class TorWatch:
    def __init__(self, name, client, args, out):
        self.name, self.client, self.args, self.out = name, client, args, out
        self.hist = collections.deque(maxlen=10)  # (t, sample)
        self.prev = None  # last good sample
        self.last_paths = None
        self.pending_i1 = None  # (t, last paths, prev sample) awaiting the next sample
        self.after = []  # [(samples left to print, label)]
        self.absent_since = None  # raw absence while the ToR answers
        self.q_since = None  # qualifying absence (I2 clock)
        self.i2_open = False
        self.longest_raw = 0
        self.longest_q = 0
        self.i1 = 0
        self.i2 = 0
        self.samples = 0
        self.cur = None

    def log(self, t, text):
        self.out.write("%s %s %s\n" % (ts(t), self.name, text))

    def dump_context(self, t, label):
        self.log(t, "%s: samples before:" % label)
        for ht, hs in self.hist:
            self.out.write("    %s %s %s\n" % (ts(ht), self.name, fmt(hs)))
        self.after.append([5, label])

    def can_serve(self, st, n):
        """Node n runs, was not force-drained, and its link to this ToR is not cut (a cut
        node's session stays Established at the ToR until the hold timer, but it cannot
        announce)."""
        ns = st["node"].get(n, {"run": True, "forced": False, "cut": "none"})
        return ns["run"] and not ns["forced"] and ns["cut"] not in (self.name, "both")

    def step(self, t, st):
        s = self.client.sample(self.args.prefix)
        self.cur = s
        tor_up = st["tor"].get(self.name, True)
        for a in self.after:
            self.out.write("    %s %s %s (after %s)\n" % (ts(t), self.name, fmt(s), a[1]))
            a[0] -= 1
        self.after = [a for a in self.after if a[0] > 0]
        if s is None or not tor_up:
            self.prev = None
            self.pending_i1 = None
            self.absent_since = self.q_since = None
            self.i2_open = False
            if self.last_paths is not None:
                self.log(t, "down or not answering")
                self.last_paths = None
            return
        self.samples += 1
        paths, est = s
        if self.last_paths != paths:
            self.log(t, fmt(s))
            self.last_paths = dict(paths)
        # I1, judged one sample late so a session that dropped with the path is seen down.
        if self.pending_i1 is not None:
            pt, last, before = self.pending_i1
            self.pending_i1 = None
            culprits, excused = [], []
            for n in sorted(last):
                ns = st["node"].get(n, {"run": True, "forced": False, "stop": 0})
                if not ns["run"]:
                    excused.append("%d not running" % n)
                elif ns["forced"]:
                    excused.append("%d force-drained" % n)
                elif n not in before[1] or n not in est or n not in self.prev_est:
                    excused.append("%d session down" % n)
                elif ns["stop"] and pt - ns["stop"] > self.args.stop_bound_ms:
                    excused.append("%d planned stop %d ms old (bound %d ms)" %
                                   (n, pt - ns["stop"], self.args.stop_bound_ms))
                else:
                    culprits.append(n)
            if excused:
                self.log(pt, "prefix gone, not a guard decision: %s" % "; ".join(excused))
            if culprits:
                self.i1 += 1
                self.log(pt, "VIOLATION I1: prefix gone; node(s) %s withdrew the last path(s) "
                         "while running with the session up" % ",".join(map(str, culprits)))
                self.dump_context(pt, "I1")
        if self.prev is not None and self.prev[0] and not paths:
            self.pending_i1 = (t, dict(self.prev[0]), self.prev)
        self.prev_est = set(est)
        # Absence clocks.
        if paths:
            if self.absent_since is not None:
                self.log(t, "prefix back after %d ms" % (t - self.absent_since))
            self.absent_since = self.q_since = None
            self.i2_open = False
        else:
            if self.absent_since is None:
                self.absent_since = t
            self.longest_raw = max(self.longest_raw, t - self.absent_since)
            qualifying = any(self.can_serve(st, n) for n in est)
            if qualifying:
                if self.q_since is None:
                    self.q_since = t
                dur = t - self.q_since
                self.longest_q = max(self.longest_q, dur)
                if dur > self.args.budget_ms:
                    self.i2 += 1
                    if not self.i2_open:
                        self.i2_open = True
                        self.log(t, "VIOLATION I2: prefix absent for %d ms (budget %d ms) with "
                                 "sessions up from running nodes %s" %
                                 (dur, self.args.budget_ms, ",".join(map(str, sorted(est)))))
                        self.dump_context(t, "I2")
            else:
                self.q_since = None
                self.i2_open = False
        self.prev = s
        self.hist.append((t, s))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--interval-ms", type=int, default=100)
    ap.add_argument("--budget-ms", type=int, default=5000)
    ap.add_argument("--stop-bound-ms", type=int, default=30000)
    ap.add_argument("--duration-s", type=float, default=7200)
    args = ap.parse_args()
    d = args.run_dir
    out = open(os.path.join(d, "oracle.log"), "a", buffering=1)
    tors = [TorWatch("bird", Bird(os.path.join(d, "bird/bird.ctl")), args, out),
            TorWatch("frr", Frr(os.path.join(d, "frr/bgpd.vty")), args, out)]
    for w in tors:
        w.prev_est = set()
    faults_path = os.path.join(d, "faults.log")
    faults_off = 0
    fault_after = []  # (due ms, line)
    deadline = time.time() + args.duration_s
    interval = args.interval_ms / 1000.0
    nxt = time.time()
    ticks = late = 0
    out.write("%s oracle start: prefix %s, %d nodes, every %d ms, I2 budget %d ms\n" %
              (ts(now_ms()), args.prefix, args.nodes, args.interval_ms, args.budget_ms))
    while time.time() < deadline and not os.path.exists(os.path.join(d, "oracle.stop")):
        st = read_state(os.path.join(d, "chaos-state"))
        t = now_ms()
        # Faults into the timeline first (in time order), with the last samples before them,
        # and the samples one second later.
        try:
            with open(faults_path) as f:
                f.seek(faults_off)
                new = f.read()
                if new.endswith("\n"):
                    faults_off += len(new)
                    for line in new.splitlines():
                        w = line.split(" ", 1)
                        out.write("%s FAULT %s | bird: %s | frr: %s\n" %
                                  (ts(int(w[0])), w[1] if len(w) > 1 else "",
                                   fmt(tors[0].cur), fmt(tors[1].cur)))
                        fault_after.append((t + 1000, line))
        except (OSError, ValueError):
            pass
        for w in tors:
            w.step(t, st)
        ticks += 1
        for due, line in [x for x in fault_after if x[0] <= t]:
            out.write("    %s +1s after [%s] | bird: %s | frr: %s\n" %
                      (ts(t), line.split(" ", 1)[-1], fmt(tors[0].cur), fmt(tors[1].cur)))
        fault_after = [x for x in fault_after if x[0] > t]
        nxt += interval
        pause = nxt - time.time()
        if pause > 0:
            time.sleep(pause)
        else:
            late += 1
            nxt = time.time()
    summary = {"ticks": ticks, "late_ticks": late, "budget_ms": args.budget_ms,
               "samples": sum(w.samples for w in tors),
               "i1": sum(w.i1 for w in tors), "i2": sum(w.i2 for w in tors),
               "tors": {w.name: {"samples": w.samples, "i1": w.i1, "i2_samples": w.i2,
                                 "longest_absence_ms": w.longest_raw,
                                 "longest_qualifying_absence_ms": w.longest_q,
                                 "absent_now": w.absent_since is not None}
                        for w in tors}}
    with open(os.path.join(d, "oracle-summary.json.new"), "w") as f:
        json.dump(summary, f)
    os.rename(os.path.join(d, "oracle-summary.json.new"), os.path.join(d, "oracle-summary.json"))
    out.write("%s oracle end: %s\n" % (ts(now_ms()), json.dumps(summary)))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
