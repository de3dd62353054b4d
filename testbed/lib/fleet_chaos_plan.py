#!/usr/bin/env python3
"""Plan of the fleet chaos test (testbed/fleet-chaos.sh): a seeded, timed list of faults.

Usage: fleet_chaos_plan.py SEED DURATION_S NODES

Prints "OFFSET_MS action args" lines, sorted, where action is one of
  svc-stop I | svc-start I           nginx on node I
  drain I | drain-force I | undrain I  operator drain through the CLI
  drain-pair I J                     two drains issued at the same instant
  disable I | enable I               node I's disable file
  cut I bird|frr|both | restore I    nftables drops on node I's links
  tor-stop T | tor-start T           BIRD or FRR bgpd, one ToR at a time
  vw-term I | vw-kill I              SIGTERM (restarted once it exits) / SIGKILL + start
  vw-crash I | vw-start I            SIGKILL, started again 3-20 s later (a machine crash)
The plan depends only on the seed, duration and node count (random.Random(seed)), never on
what the lab does, so a seed replays the same faults at the same offsets. It keeps its own model
of what it did (which services are down, which nodes drained, cut, disabled) so that every
fault changes something and every one is undone later; shared outages (several services failing
within a second) are frequent, because that is where the guard matters, and the faults lean
towards the harmful choice: drains, disable files and crashes mostly hit nodes whose service is
up (the last healthy ones during an outage), planned restarts mostly nodes whose service is down
(held nodes). The last 15 s only
recover: the run ends with every fault undone.
"""
import heapq
import random
import sys


def main():
    seed, duration_s, n = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    rnd = random.Random(seed)
    end = int(duration_s * 1000)
    quiet = max(end - 15000, 0)
    out = []
    pending = []  # heap of (t, seq, action, args) recoveries
    seq = 0
    svc_down, drained, disabled, cut = set(), set(), set(), set()
    busy_vw = {}  # node -> no vipwarden restart before this offset
    tor_busy_until = 0

    def later(t, action, *args):
        nonlocal seq
        seq += 1
        heapq.heappush(pending, (t, seq, action, args))

    def emit(t, action, *args):
        out.append((t, action, args))

    kinds = [("svc-stop", 18), ("outage", 10), ("drain", 9), ("drain-pair", 3), ("disable", 7),
             ("cut", 9), ("tor", 3), ("vw-term", 5), ("vw-kill", 4), ("vw-crash", 4)]

    def pick(cands, healthy):
        """A node from cands, with probability 0.7 one whose service is up (healthy=True) or
        down (healthy=False) when there is one."""
        pref = [i for i in cands if (i not in svc_down) == healthy]
        return rnd.choice(pref if pref and rnd.random() < 0.7 else cands)
    total = sum(w for _, w in kinds)
    t = 3000
    while True:
        t += rnd.randint(400, 3000)
        # Recoveries due before the next fault.
        while pending and pending[0][0] <= min(t, end):
            pt, _, action, args = heapq.heappop(pending)
            emit(pt, action, *args)
            node = args[0] if args else None
            if action == "svc-start":
                svc_down.discard(node)
            elif action == "undrain":
                drained.discard(node)
            elif action == "enable":
                disabled.discard(node)
            elif action == "restore":
                cut.discard(node)
        if t >= quiet:
            break
        r = rnd.uniform(0, total)
        kind = kinds[-1][0]
        for k, w in kinds:
            if r < w:
                kind = k
                break
            r -= w
        nodes = list(range(1, n + 1))
        if kind == "svc-stop":
            up = [i for i in nodes if i not in svc_down]
            if not up:
                continue
            i = rnd.choice(up)
            svc_down.add(i)
            emit(t, "svc-stop", i)
            later(t + rnd.randint(3000, 40000), "svc-start", i)
        elif kind == "outage":
            up = [i for i in nodes if i not in svc_down]
            if len(up) < 2:
                continue
            k = rnd.randint(2, len(up))
            for j, i in enumerate(sorted(rnd.sample(up, k))):
                svc_down.add(i)
                emit(t + j * rnd.randint(0, 150), "svc-stop", i)
                later(t + rnd.randint(5000, 45000), "svc-start", i)
        elif kind == "drain":
            free = [i for i in nodes if i not in drained]
            if not free:
                continue
            i = pick(free, True)
            drained.add(i)
            emit(t, "drain-force" if rnd.random() < 0.08 else "drain", i)
            later(t + rnd.randint(4000, 30000), "undrain", i)
        elif kind == "drain-pair":
            free = [i for i in nodes if i not in drained]
            if len(free) < 2:
                continue
            up = [i for i in free if i not in svc_down]
            pair = rnd.sample(up if len(up) >= 2 and rnd.random() < 0.7 else free, 2)
            drained.update(pair)
            emit(t, "drain-pair", *sorted(pair))
            for i in pair:
                later(t + rnd.randint(4000, 30000), "undrain", i)
        elif kind == "disable":
            free = [i for i in nodes if i not in disabled]
            if not free:
                continue
            i = pick(free, True)
            disabled.add(i)
            emit(t, "disable", i)
            later(t + rnd.randint(4000, 30000), "enable", i)
        elif kind == "cut":
            free = [i for i in nodes if i not in cut]
            if not free:
                continue
            i = rnd.choice(free)
            cut.add(i)
            emit(t, "cut", i, rnd.choice(["bird", "frr", "both"]))
            # Some shorter than the 9 s hold time (the session survives), some longer.
            later(t + rnd.randint(2000, 20000), "restore", i)
        elif kind == "tor":
            if t < tor_busy_until:
                continue
            tor = rnd.choice(["bird", "frr"])
            down = rnd.randint(1000, 5000)
            emit(t, "tor-stop", tor)
            later(t + down, "tor-start", tor)
            tor_busy_until = t + down + 20000
        elif kind in ("vw-term", "vw-kill"):
            free = [i for i in nodes if busy_vw.get(i, 0) <= t]
            if not free:
                continue
            i = pick(free, kind == "vw-kill")
            busy_vw[i] = t + 40000
            emit(t, kind, i)
        elif kind == "vw-crash":
            free = [i for i in nodes if busy_vw.get(i, 0) <= t]
            if not free:
                continue
            i = pick(free, True)
            down = rnd.randint(3000, 20000)
            busy_vw[i] = t + down + 20000
            emit(t, "vw-crash", i)
            later(t + down, "vw-start", i)
    while pending:
        pt, _, action, args = heapq.heappop(pending)
        emit(min(pt, end), action, *args)
    out.sort(key=lambda x: x[0])
    for t, action, args in out:
        print(t, action, *args)


if __name__ == "__main__":
    main()
