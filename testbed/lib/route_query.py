#!/usr/bin/env python3
"""Normalise BIRD (birdc text), FRR (vtysh JSON) and GoBGP (gobgp -j) answers for the lab.

Usage (router output on stdin):
  route_query.py bird-route PREFIX     # birdc show route PREFIX all
  route_query.py frr-route PREFIX      # vtysh show bgp <af> unicast PREFIX json
  route_query.py bird-session PEER     # birdc show protocols all node1
  route_query.py frr-session PEER      # vtysh show bgp neighbors PEER json
  route_query.py gobgp-route PREFIX    # gobgp global rib -a <af> PREFIX -j
  route_query.py gobgp-session PEER    # gobgp neighbor PEER -j
  route_query.py format-route PREFIX   # one line for people, from the JSON above

Route output: {"present", "as_path": [[seg_type, [asn..]]..], "as_path_str",
"communities", "large_communities", "next_hop", "med"}; communities as
"a:b" and large communities as "a:b:c", sorted.
Session output: {"state", "uptime_ms", "updates_in"} (updates_in: UPDATEs, or route
updates and withdraws for BIRD, the router received from the node; None if not shown).
"""
import json
import re
import sys
import time
from datetime import datetime


def empty_route():
    return {"present": False, "as_path": [], "as_path_str": "", "communities": [],
            "large_communities": [], "next_hop": "", "med": ""}


def parse_bird_as_path(text):
    """BIRD prints sequences plain and sets in braces: '65101 {1 2} 3'."""
    segs = []
    for m in re.finditer(r"\{([^}]*)\}|(\d+)", text):
        if m.group(1) is not None:
            segs.append(["as-set", [int(x) for x in m.group(1).split()]])
        else:
            asn = int(m.group(2))
            if segs and segs[-1][0] == "as-sequence":
                segs[-1][1].append(asn)
            else:
                segs.append(["as-sequence", [asn]])
    return segs


def as_path_str(segs):
    parts = []
    for kind, asns in segs:
        s = " ".join(str(a) for a in asns)
        parts.append("{" + s + "}" if kind == "as-set" else s)
    return " ".join(parts)


def bird_route(text, prefix):
    out = empty_route()
    lines = text.splitlines()
    start = None
    for i, line in enumerate(lines):
        if line.startswith(prefix + " ") or line.startswith(prefix + "\t"):
            start = i
            break
    if start is None:
        return out
    # Only the first (best, marked *) route block for the prefix.
    block = [lines[start]]
    for line in lines[start + 1:]:
        if line and not line[0].isspace():
            break
        block.append(line)
    if "unreachable" in block[0]:
        return out
    out["present"] = True
    for line in block[1:]:
        s = line.strip()
        key, _, val = s.partition(": ")
        if key == "BGP.as_path":
            out["as_path"] = parse_bird_as_path(val)
        elif key == "BGP.community":
            out["communities"] = sorted(
                f"{a}:{b}" for a, b in re.findall(r"\((\d+),\s*(\d+)\)", val))
        elif key == "BGP.large_community":
            out["large_communities"] = sorted(
                f"{a}:{b}:{c}" for a, b, c in
                re.findall(r"\((\d+),\s*(\d+),\s*(\d+)\)", val))
        elif key == "BGP.next_hop":
            # IPv6 may show "global link-local"; keep the first.
            out["next_hop"] = val.split()[0]
        elif key == "BGP.med":
            out["med"] = int(val)
    out["as_path_str"] = as_path_str(out["as_path"])
    return out


# FRR prints well-known communities by name (also in JSON).
FRR_WELL_KNOWN = {
    "graceful-shutdown": "65535:0", "gracefulShutdown": "65535:0",
    "accept-own": "65535:1", "llgr-stale": "65535:6", "no-llgr": "65535:7",
    "blackhole": "65535:666", "no-export": "65535:65281",
    "no-advertise": "65535:65282", "local-AS": "65535:65283", "no-peer": "65535:65284",
}


def frr_route(text, prefix):
    out = empty_route()
    try:
        data = json.loads(text)
    except ValueError:
        return out
    paths = [p for p in data.get("paths", []) if p.get("valid")]
    if not paths:
        return out
    best = next((p for p in paths if p.get("bestpath", {}).get("overall")), paths[0])
    out["present"] = True
    segs = best.get("aspath", {}).get("segments", [])
    out["as_path"] = [[s.get("type"), s.get("list", [])] for s in segs]
    out["as_path_str"] = as_path_str(out["as_path"])
    out["communities"] = sorted(FRR_WELL_KNOWN.get(c, c)
                                for c in best.get("community", {}).get("list", []))
    out["large_communities"] = sorted(best.get("largeCommunity", {}).get("list", []))
    nhs = best.get("nexthops", [])
    out["next_hop"] = nhs[0].get("ip", "") if nhs else ""
    out["med"] = best.get("metric", "")
    return out


def bird_session(text, _peer):
    state, since, updates = "", None, None
    for line in text.splitlines():
        m = re.match(r"^\s+Import (updates|withdraws):\s+(\d+)", line)
        if m:
            updates = (updates or 0) + int(m.group(2))
        m = re.match(r"^node1\s+BGP\s+\S+\s+(\w+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)", line)
        if m:
            since = m.group(2)
        m = re.match(r"^\s+BGP state:\s+(\w+)", line)
        if m:
            state = m.group(1)
    uptime = None
    if state == "Established" and since:
        t = datetime.strptime(since, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        uptime = int((time.time() - t) * 1000)
    return {"state": state, "uptime_ms": uptime, "updates_in": updates}


def frr_session(text, peer):
    try:
        data = json.loads(text).get(peer, {})
    except ValueError:
        data = {}
    state = data.get("bgpState", "")
    uptime = data.get("bgpTimerUpMsec") if state == "Established" else None
    updates = data.get("messageStats", {}).get("updatesRecv")
    return {"state": state, "uptime_ms": uptime, "updates_in": updates}


# GoBGP path attribute type codes (RFC 4271, 1997, 4760, 8092) and session states (its FSM enum).
GOBGP_STATES = {1: "Idle", 2: "Connect", 3: "Active", 4: "OpenSent", 5: "OpenConfirm",
                6: "Established"}


def gobgp_route(text, prefix):
    out = empty_route()
    try:
        paths = json.loads(text).get(prefix, [])
    except (ValueError, AttributeError):
        return out
    if not paths:
        return out
    best = next((p for p in paths if p.get("best")), paths[0])
    out["present"] = True
    for a in best.get("attrs", []):
        t = a.get("type")
        if t == 2:
            out["as_path"] = [["as-set" if s.get("segment_type") == 1 else "as-sequence",
                               s.get("asns", [])] for s in a.get("as_paths", [])]
        elif t == 3:
            out["next_hop"] = a.get("nexthop", "")
        elif t == 4:
            out["med"] = a.get("metric", "")
        elif t == 8:
            out["communities"] = sorted(f"{c >> 16}:{c & 0xFFFF}" for c in a.get("communities", []))
        elif t == 32:
            out["large_communities"] = sorted(
                f"{v['ASN']}:{v['LocalData1']}:{v['LocalData2']}" for v in a.get("value", []))
        elif t == 14 and not out["next_hop"]:
            out["next_hop"] = a.get("nexthop", "")
    out["as_path_str"] = as_path_str(out["as_path"])
    return out


def gobgp_session(text, _peer):
    try:
        data = json.loads(text)
    except ValueError:
        data = {}
    state = GOBGP_STATES.get(data.get("state", {}).get("session_state"), "")
    uptime = None
    if state == "Established":
        since = data.get("timers", {}).get("state", {}).get("uptime", {}).get("seconds")
        if since:
            uptime = int(time.time() * 1000) - int(since) * 1000
    updates = data.get("state", {}).get("messages", {}).get("received", {}).get("update")
    return {"state": state, "uptime_ms": uptime, "updates_in": updates}


def format_route(text, prefix):
    """One human-readable line from a normalised route (JSON on stdin)."""
    r = json.loads(text)
    return (f"      {prefix:<21} via {r['next_hop']:<15} as-path [{r['as_path_str']}]"
            f" med {r['med']} communities {' '.join(r['communities']) or '-'}"
            f" large {' '.join(r['large_communities']) or '-'}")


def main():
    mode, arg = sys.argv[1], sys.argv[2]
    text = sys.stdin.read()
    fn = {"bird-route": bird_route, "frr-route": frr_route,
          "bird-session": bird_session, "frr-session": frr_session,
          "gobgp-route": gobgp_route, "gobgp-session": gobgp_session,
          "format-route": format_route}[mode]
    out = fn(text, arg)
    print(out if isinstance(out, str) else json.dumps(out))


if __name__ == "__main__":
    main()
