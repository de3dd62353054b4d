#!/usr/bin/env python3
"""A stand-in for the vipwarden binary, built on gobgpd, for validating the lab.

It implements the part of vipwarden's contract the lab tests exercise, so the
tests themselves can be proven against real BIRD and FRR before the Rust
daemon speaks BGP:

  vipwarden-standin.py check-config --config PATH
  vipwarden-standin.py run --config PATH [--log-format text|json] [-v]

One gobgpd per peer (child processes that die with the stand-in: kill -9 of
the stand-in closes their TCP sessions like a dead vipwarden's), health
checks (tcp, http, exec) with rise/fall, announce/withdraw through the gobgp
CLI with the configured MED, communities, large communities, AS_PATH prepend
and per-peer IPv6 next hop. SIGTERM: withdraw everything, then
`gobgp neighbor X disable` (NOTIFICATION Cease/Administrative Shutdown),
exit 0.

Use: VIPWARDEN_BIN=testbed/standin/vipwarden-standin.py testbed/run-tests.sh
It is NOT the product; it needs python3-yaml and gobgpd.
"""
import argparse
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import yaml

API_PORT_BASE = 50100
PR_SET_PDEATHSIG = 1


def log(msg):
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    print(f"{t} vipwarden-standin: {msg}", file=sys.stderr, flush=True)


def duration(v):
    v = str(v).strip()
    for suffix, mult in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if v.endswith(suffix):
            return float(v[: -len(suffix)]) * mult
    return float(v)


def load_config(path):
    with open(path) as f:
        cfg = yaml.safe_load(f)
    for key in ("router_id", "local_as", "peers", "checks", "vips"):
        if key not in cfg:
            raise ValueError(f"{path}: missing {key}")
    names = {c["name"] for c in cfg["checks"]}
    for vip in cfg["vips"]:
        for c in vip.get("checks", []):
            if c not in names:
                raise ValueError(f"{path}: vip {vip['name']}: unknown check {c}")
    return cfg


def die_with_parent():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Peer:
    def __init__(self, idx, cfg, peer, workdir):
        self.name = peer["name"]
        self.address = peer["address"]
        self.port = API_PORT_BASE + idx
        self.nh6 = peer.get("next_hop_v6")
        hold = int(duration(peer.get("hold_time", "9s")))
        local = peer.get("local_address")
        conf = os.path.join(workdir, f"gobgpd-{self.name}.toml")
        with open(conf, "w") as f:
            f.write(f"""[global.config]
  as = {cfg['local_as']}
  router-id = "{cfg['router_id']}"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{self.address}"
    peer-as = {peer['remote_as']}
""")
            if local:
                f.write(f"""  [neighbors.transport.config]
    local-address = "{local}"
""")
            f.write(f"""  [neighbors.timers.config]
    connect-retry = 1
    hold-time = {hold}
    keepalive-interval = {max(1, hold // 3)}
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
""")
        self.logf = open(os.path.join(workdir, f"gobgpd-{self.name}.log"), "w")
        self.proc = subprocess.Popen(
            ["gobgpd", "-f", conf, "--pprof-disable", "--api-hosts", f"127.0.0.1:{self.port}"],
            stdout=self.logf, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.cli("global", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"gobgpd for {self.name} did not start")

    def cli(self, *args, check=True):
        return subprocess.run(["gobgp", "-u", "127.0.0.1", "-p", str(self.port), *args],
                              capture_output=True, text=True, check=check)

    def add(self, prefix, vip, local_as):
        fam = "ipv6" if ":" in prefix else "ipv4"
        args = ["global", "rib", "-a", fam, "add", prefix, "origin", "igp"]
        if fam == "ipv6":
            if not self.nh6:
                log(f"peer {self.name}: no next_hop_v6, not announcing {prefix}")
                return
            args += ["nexthop", self.nh6]
        if "med" in vip:
            args += ["med", str(vip["med"])]
        if vip.get("communities"):
            args += ["community", ",".join(vip["communities"])]
        if vip.get("large_communities"):
            args += ["large-community", ",".join(vip["large_communities"])]
        prepend = int(vip.get("as_path_prepend", 0))
        if prepend:
            args += ["aspath", ",".join([str(local_as)] * prepend)]
        self.cli(*args)

    def delete(self, prefix):
        fam = "ipv6" if ":" in prefix else "ipv4"
        self.cli("global", "rib", "-a", fam, "del", prefix, check=False)

    def shutdown(self):
        self.cli("neighbor", self.address, "disable", check=False)


class Check:
    def __init__(self, c):
        self.c = c
        self.name = c["name"]
        self.interval = duration(c.get("interval", "1s"))
        self.timeout = duration(c.get("timeout", "1s"))
        self.rise = int(c.get("rise", 2))
        self.fall = int(c.get("fall", 2))
        self.up = False
        self.ok_run = 0
        self.fail_run = 0
        self.detail = ""

    def probe(self):
        t = self.c["type"]
        try:
            if t == "tcp":
                host, _, port = self.c["target"].rpartition(":")
                with socket.create_connection((host.strip("[]"), int(port)), timeout=self.timeout):
                    return True, "connected"
            if t in ("http", "https"):
                with urllib.request.urlopen(self.c["url"], timeout=self.timeout) as r:
                    return 200 <= r.status < 400, f"HTTP {r.status}"
            if t == "exec":
                r = subprocess.run(self.c["command"], timeout=self.timeout, capture_output=True)
                return r.returncode == 0, f"exit {r.returncode}"
        except ConnectionRefusedError:
            return False, "connect refused"
        except (socket.timeout, TimeoutError, subprocess.TimeoutExpired):
            return False, "timeout"
        except Exception as e:  # noqa: BLE001 - report any probe error as a failure
            return False, str(e)
        return False, f"unknown check type {t}"

    def step(self):
        """Probe once; return True if the up/down state changed."""
        ok, self.detail = self.probe()
        if ok:
            self.ok_run, self.fail_run = self.ok_run + 1, 0
            if not self.up and self.ok_run >= self.rise:
                self.up = True
                return True
        else:
            self.fail_run, self.ok_run = self.fail_run + 1, 0
            if self.up and self.fail_run >= self.fall:
                self.up = False
                return True
        return False

    def reason(self):
        if self.up:
            return f"check {self.name} passed {self.ok_run}/{self.rise}"
        return f"check {self.name} failed {self.fail_run}/{self.fall}: {self.detail}"


def run(cfg):
    stop = threading.Event()
    lock = threading.Lock()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Inside the lab's run dir when there is one, so the lab's cleanup removes
    # it even after kill -9; removed on a clean stop otherwise.
    workdir = tempfile.mkdtemp(prefix="vw-standin.", dir=os.environ.get("VW_RUN_DIR") or None)
    peers = [Peer(i, cfg, p, workdir) for i, p in enumerate(cfg["peers"])]
    log(f"started {len(peers)} peer(s) with gobgpd, work dir {workdir}")
    checks = {c["name"]: Check(c) for c in cfg["checks"]}
    announced = {v["name"]: False for v in cfg["vips"]}

    def reconcile(trigger):
        for vip in cfg["vips"]:
            states = [checks[c].up for c in vip["checks"]]
            healthy = all(states) if vip.get("require", "all") == "all" else any(states)
            if healthy == announced[vip["name"]]:
                continue
            announced[vip["name"]] = healthy
            pfx = ", ".join(vip["prefixes"])
            for p in peers:
                for prefix in vip["prefixes"]:
                    if healthy:
                        p.add(prefix, vip, cfg["local_as"])
                    else:
                        p.delete(prefix)
                verb = f"announced {vip['name']} ({pfx}) to" if healthy else f"withdrew {vip['name']} ({pfx}) from"
                log(f"{verb} {p.name}: {trigger.reason()}")

    def check_loop(chk):
        while not stop.is_set():
            t0 = time.monotonic()
            changed = chk.step()
            if changed:
                with lock:
                    if not stop.is_set():
                        reconcile(chk)
            stop.wait(max(0.0, chk.interval - (time.monotonic() - t0)))

    threads = [threading.Thread(target=check_loop, args=(c,), daemon=True) for c in checks.values()]
    for t in threads:
        t.start()
    while not stop.is_set():
        stop.wait(0.5)
    with lock:
        log("SIGTERM: withdrawing all routes")
        # VW_STANDIN_FAULT=skip-withdraw: a deliberately broken shutdown, to
        # prove that 08-sigterm.sh catches it.
        skip = os.environ.get("VW_STANDIN_FAULT") == "skip-withdraw"
        for p in ([] if skip else peers):
            for vip in cfg["vips"]:
                if announced[vip["name"]]:
                    for prefix in vip["prefixes"]:
                        p.delete(prefix)
        time.sleep(0.3)
        for p in peers:
            p.shutdown()
            log(f"sent Cease/Administrative Shutdown to {p.name}")
        time.sleep(0.3)
        for p in peers:
            p.proc.terminate()
        for p in peers:
            p.proc.wait(timeout=5)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main():
    ap = argparse.ArgumentParser(prog="vipwarden-standin")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "check-config"):
        sp = sub.add_parser(name)
        sp.add_argument("--config", required=True)
        sp.add_argument("--log-format", default="text")
        sp.add_argument("-v", action="count", default=0)
    a = ap.parse_args()
    try:
        cfg = load_config(a.config)
    except Exception as e:  # noqa: BLE001
        print(f"error: {e}", file=sys.stderr)
        return 1
    if a.cmd == "check-config":
        print(f"{a.config}: OK")
        return 0
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
