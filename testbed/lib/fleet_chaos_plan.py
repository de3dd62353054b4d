#!/usr/bin/env python3
"""Plan of the fleet chaos test (testbed/fleet-chaos.sh): a seeded, timed list of faults.

Usage: fleet_chaos_plan.py SEED DURATION_S NODES

Prints "OFFSET_MS action args" lines, sorted, where action is one of
  episode NAME                       a marker for the timeline (see below)
  svc-stop I | svc-start I           nginx on node I
  drain I | drain-force I | undrain I  operator drain through the CLI
  drain-pair I J                     two drains issued at the same instant
  disable I | enable I               node I's disable file
  cut I bird|frr|both | restore I    nftables drops on node I's links
  tor-stop T | tor-start T           BIRD or FRR bgpd, one ToR at a time
  vw-term I | vw-kill I              SIGTERM (restarted once it exits) / SIGKILL + start
  vw-crash I | vw-start I            SIGKILL, started again seconds later (a machine crash)
The plan depends only on the seed, duration and node count (random.Random(seed)), never on
what the lab does, so a seed replays the same faults at the same offsets.

The run is a series of episodes, each chosen at random and each ending with every fault undone
(services up, drains and disable files gone, links restored), 2-5 s apart:
  all-down       every service fails within ~1 s; meanwhile ToR restarts, restarts, crashes,
                 cuts and drains at random; then one node recovers, and sometimes crashes
  last-healthy   all services but one fail; once the others left, the last healthy node gets a
                 disable file, a drain, a crash, a SIGTERM, a cut, its service fails, or (rarely)
                 a forced drain
  last-two       all but two fail; the two get drains or disable files at the same instant, or
                 one crashes while the other is drained
  partition      half the nodes lose their link to one ToR for longer than the hold time; then
                 the services of the other half (the only ones that ToR still has) fail
  rolling        every service fails; vipwarden is restarted (SIGTERM) on every node in turn
  tor-held       every service fails; one ToR restarts, later perhaps the other
  random         independent faults of every kind for 20-40 s
No episode starts in the last 15 s of --duration, and one that would end after it is left out.
"""
import random
import sys


class Plan:
    def __init__(self, rnd, n):
        self.rnd, self.n = rnd, n
        self.out = []
        self.tor_busy = 0  # one ToR restart at a time

    def emit(self, t, action, *args):
        self.out.append((int(t), action, args))

    def nodes(self):
        return list(range(1, self.n + 1))

    # Each episode returns its end offset; everything it did is undone by then.
    def all_down(self, t):
        r = self.rnd
        length = r.randint(22000, 35000)
        end = t + length
        for i in self.nodes():
            self.emit(t + r.randint(0, 800), "svc-stop", i)
        used = set()
        for _ in range(r.randint(2, 4)):
            at = t + r.randint(6000, length - 12000)
            self.side_fault(at, end - 6000, used)
        h = r.choice(self.nodes())
        rec = end - 5000
        self.emit(rec, "svc-start", h)
        if r.random() < 0.6 and h not in used:
            # The others left; the one healthy node's machine crashes for 8-12 s.
            crash = rec + r.randint(4000, 4800)
            self.emit(crash, "vw-crash", h)
            end = crash + r.randint(8000, 12000)
            self.emit(end, "vw-start", h)
        for i in self.nodes():
            if i != h:
                self.emit(end, "svc-start", i)
        return end

    def side_fault(self, at, until, used):
        """One fault in an outage, undone by `until`."""
        r = self.rnd
        free = [i for i in self.nodes() if i not in used]
        if not free:
            return
        i = r.choice(free)
        used.add(i)
        k = r.choice(["vw-term", "vw-crash", "cut", "drain", "disable", "tor"])
        if k == "tor" and at < self.tor_busy:
            k = "cut"
        if k == "vw-term":
            self.emit(at, "vw-term", i)
        elif k == "vw-crash":
            self.emit(at, "vw-crash", i)
            self.emit(min(at + r.randint(3000, 10000), until), "vw-start", i)
        elif k == "cut":
            self.emit(at, "cut", i, r.choice(["bird", "frr", "both"]))
            self.emit(min(at + r.randint(3000, 12000), until), "restore", i)
        elif k == "drain":
            self.emit(at, "drain", i)
            self.emit(until, "undrain", i)
        elif k == "disable":
            self.emit(at, "disable", i)
            self.emit(until, "enable", i)
        else:
            tor = r.choice(["bird", "frr"])
            back = min(at + r.randint(1000, 4000), until)
            self.emit(at, "tor-stop", tor)
            self.emit(back, "tor-start", tor)
            self.tor_busy = back + 3000

    def last_healthy(self, t):
        r = self.rnd
        length = r.randint(22000, 32000)
        end = t + length
        h = r.choice(self.nodes())
        for i in self.nodes():
            if i != h:
                self.emit(t + r.randint(0, 300), "svc-stop", i)
        at = t + r.randint(7000, 9000)
        k = r.choices(["disable", "drain", "vw-crash", "vw-term", "cut", "svc-stop", "drain-force"],
                      [3, 3, 3, 2, 2, 2, 1])[0]
        if k == "disable":
            self.emit(at, "disable", h)
            self.emit(end - 3000, "enable", h)
        elif k in ("drain", "drain-force"):
            self.emit(at, k, h)
            self.emit(end - 3000, "undrain", h)
        elif k == "vw-crash":
            self.emit(at, "vw-crash", h)
            self.emit(at + r.randint(8000, 12000), "vw-start", h)
        elif k == "vw-term":
            self.emit(at, "vw-term", h)
        elif k == "cut":
            self.emit(at, "cut", h, r.choice(["bird", "frr", "both"]))
            self.emit(at + r.randint(10000, 14000), "restore", h)
        else:
            self.emit(at, "svc-stop", h)
            self.emit(end - 3000, "svc-start", h)
        used = {h}
        if r.random() < 0.5:
            self.side_fault(t + r.randint(3000, 12000), end - 4000, used)
        for i in self.nodes():
            if i != h:
                self.emit(end, "svc-start", i)
        return end

    def last_two(self, t):
        r = self.rnd
        length = r.randint(18000, 26000)
        end = t + length
        a, b = sorted(r.sample(self.nodes(), 2))
        for i in self.nodes():
            if i not in (a, b):
                self.emit(t + r.randint(0, 300), "svc-stop", i)
        at = t + r.randint(7000, 9000)
        k = r.choice(["drain-pair", "disable-pair", "crash-drain"])
        if k == "drain-pair":
            self.emit(at, "drain-pair", a, b)
            self.emit(end - 3000, "undrain", a)
            self.emit(end - 3000, "undrain", b)
        elif k == "disable-pair":
            self.emit(at, "disable", a)
            self.emit(at, "disable", b)
            self.emit(end - 3000, "enable", a)
            self.emit(end - 3000, "enable", b)
        else:
            self.emit(at, "vw-crash", a)
            self.emit(at + 300, "drain", b)
            self.emit(at + r.randint(6000, 9000), "vw-start", a)
            self.emit(end - 3000, "undrain", b)
        for i in self.nodes():
            if i not in (a, b):
                self.emit(end, "svc-start", i)
        return end

    def partition(self, t):
        r = self.rnd
        tor = r.choice(["bird", "frr"])
        cut = sorted(r.sample(self.nodes(), self.n // 2))
        rest = [i for i in self.nodes() if i not in cut]
        for i in cut:
            self.emit(t, "cut", i, tor)
        # After the ToR's hold timer (9 s) dropped the cut nodes.
        at = t + r.randint(11000, 13000)
        for i in rest:
            self.emit(at + r.randint(0, 300), "svc-stop", i)
        end = at + r.randint(14000, 20000)
        for i in cut:
            self.emit(end - 2000, "restore", i)
        for i in rest:
            self.emit(end, "svc-start", i)
        return end

    def rolling(self, t):
        r = self.rnd
        for i in self.nodes():
            self.emit(t + r.randint(0, 300), "svc-stop", i)
        at = t + 7000
        order = self.nodes()
        r.shuffle(order)
        for i in order:
            self.emit(at, "vw-term", i)
            at += r.randint(3000, 6000)
        end = at + 8000
        for i in self.nodes():
            self.emit(end, "svc-start", i)
        return end

    def tor_held(self, t):
        r = self.rnd
        for i in self.nodes():
            self.emit(t + r.randint(0, 300), "svc-stop", i)
        tors = ["bird", "frr"]
        r.shuffle(tors)
        at = t + r.randint(7000, 9000)
        down = r.randint(1000, 4000)
        self.emit(at, "tor-stop", tors[0])
        self.emit(at + down, "tor-start", tors[0])
        end = at + down + 9000
        if r.random() < 0.5:
            at2 = at + down + r.randint(8000, 10000)
            down2 = r.randint(1000, 4000)
            self.emit(at2, "tor-stop", tors[1])
            self.emit(at2 + down2, "tor-start", tors[1])
            end = at2 + down2 + 9000
        for i in self.nodes():
            self.emit(end, "svc-start", i)
        return end

    def random_window(self, t):
        r = self.rnd
        end = t + r.randint(20000, 40000)
        svc_down, drained, disabled, cut = set(), set(), set(), set()
        vw_busy = set()
        at = t
        while True:
            at += r.randint(400, 2500)
            if at > end - 6000:
                break
            k = r.choices(["svc", "outage", "drain", "disable", "cut", "vw-kill"],
                          [6, 3, 3, 2, 3, 1])[0]
            nodes = self.nodes()
            if k == "svc":
                up = [i for i in nodes if i not in svc_down]
                if up:
                    i = r.choice(up)
                    svc_down.add(i)
                    self.emit(at, "svc-stop", i)
            elif k == "outage":
                up = [i for i in nodes if i not in svc_down]
                if len(up) >= 2:
                    for i in r.sample(up, r.randint(2, len(up))):
                        svc_down.add(i)
                        self.emit(at + r.randint(0, 150), "svc-stop", i)
            elif k == "drain":
                free = [i for i in nodes if i not in drained]
                if free:
                    i = r.choice(free)
                    drained.add(i)
                    self.emit(at, "drain", i)
            elif k == "disable":
                free = [i for i in nodes if i not in disabled]
                if free:
                    i = r.choice(free)
                    disabled.add(i)
                    self.emit(at, "disable", i)
            elif k == "cut":
                free = [i for i in nodes if i not in cut]
                if free:
                    i = r.choice(free)
                    cut.add(i)
                    self.emit(at, "cut", i, r.choice(["bird", "frr", "both"]))
            else:
                free = [i for i in nodes if i not in vw_busy]
                if free:
                    i = r.choice(free)
                    vw_busy.add(i)
                    self.emit(at, "vw-kill", i)
        # Undo in a random order over the last 5 s.
        undo = [(i, "svc-start") for i in svc_down] + [(i, "undrain") for i in drained] + \
            [(i, "enable") for i in disabled] + [(i, "restore") for i in cut]
        for i, a in undo:
            self.emit(end - r.randint(0, 5000), a, i)
        return end


EPISODES = [("all-down", 2), ("last-healthy", 3), ("last-two", 2), ("partition", 2),
            ("rolling", 1), ("tor-held", 2), ("random", 3)]


def main():
    seed, duration_s, n = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    rnd = random.Random(seed)
    plan = Plan(rnd, n)
    limit = int(duration_s * 1000)
    run = {"all-down": plan.all_down, "last-healthy": plan.last_healthy,
           "last-two": plan.last_two, "partition": plan.partition, "rolling": plan.rolling,
           "tor-held": plan.tor_held, "random": plan.random_window}
    t = 2000
    while t < limit - 15000:
        name = rnd.choices([e for e, _ in EPISODES], [w for _, w in EPISODES])[0]
        mark = len(plan.out)
        plan.emit(t - 1, "episode", name)
        end = run[name](t)
        if end > limit:
            # It would run past --duration: drop it and end here (still deterministic).
            del plan.out[mark:]
            break
        t = end + rnd.randint(2000, 5000)
    plan.out.sort(key=lambda x: x[0])
    for t, action, args in plan.out:
        print(t, action, *args)


if __name__ == "__main__":
    main()
