#!/usr/bin/env python3
"""Configs for testbed/bench-memory.sh (documentation prefixes only: 2001:db8::/32).

Usage: memory_configs.py DIR KIND PEER_ADDR PEER_PORT LOCAL_ADDR NEXT_HOP_V6 SERVICE API
  KIND prefixes: one VIP holding 100k /128s (2001:db8:a::/108), one tcp check;
  KIND vips:     100k VIPs, one /128 each, spread over 100 tcp checks of one service
                 (the shape of bench-decisions.sh).
Also writes DIR/prefixes.txt (one prefix a line) for the GoBGP and ExaBGP runs.
N (default 100000) from the environment variable BENCH_MEM_N.
"""
import ipaddress
import os
import sys

d, kind, peer, port, local, nh6, service, api = sys.argv[1:9]
n = int(os.environ.get("BENCH_MEM_N", "100000"))
checks = 100 if kind == "vips" else 1
base = int(ipaddress.IPv6Address("2001:db8:a::"))
prefixes = [f"{ipaddress.IPv6Address(base + i)}/128" for i in range(1, n + 1)]
with open(f"{d}/prefixes.txt", "w") as f:
    f.write("\n".join(prefixes) + "\n")
with open(f"{d}/vipwarden-{kind}.yaml", "w") as f:
    f.write("router_id: 198.51.100.2\nlocal_as: 65101\n")
    f.write(f"state_dir: {d}/state\napi: {{listen: '{api}'}}\n")
    f.write(
        f"peers:\n  - {{name: tor, address: '{peer}', port: {port}, remote_as: 65000, "
        f"local_address: '{local}', next_hop_v6: '{nh6}', hold_time: 9s}}\n"
    )
    f.write("checks:\n")
    for c in range(checks):
        f.write(
            f"  - {{name: c{c}, type: tcp, target: '{service}', interval: 1s, timeout: 500ms, "
            "rise: 1, fall: 1}\n"
        )
    f.write("vips:\n")
    if kind == "vips":
        for v, p in enumerate(prefixes):
            f.write(f"  - {{name: v{v}, prefixes: ['{p}'], checks: [c{v % checks}]}}\n")
    else:
        f.write("  - name: big\n    checks: [c0]\n    prefixes:\n")
        for p in prefixes:
            f.write(f"      - '{p}'\n")
