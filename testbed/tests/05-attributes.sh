#!/usr/bin/env bash
# AS_PATH is an AS_SEQUENCE with 65101 exactly once (prepend 0) and three
# times with as_path_prepend: 2; MED, communities and large communities are
# visible at the router.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "AS_PATH, MED, communities, large communities"

check_attrs() {
  local want_path=$1 p json
  for p in "$VW_VIP4_PREFIX" "$VW_VIP6_PREFIX"; do
    json=$(vw_router_route_json "$VW_ROUTER" "$p")
    vw_info "$p at $VW_RLABEL: $json"
    python3 - "$json" "$want_path" <<'PY' || vw_fail "attributes of $p wrong at $VW_RLABEL"
import json, sys
r = json.loads(sys.argv[1]); want = [int(x) for x in sys.argv[2].split()]
errs = []
if r["as_path"] != [["as-sequence", want]]:
    errs.append(f"as_path {r['as_path']} != one AS_SEQUENCE {want}")
if r["communities"] != ["65101:100"]:
    errs.append(f"communities {r['communities']}")
if r["large_communities"] != ["65101:1:2"]:
    errs.append(f"large communities {r['large_communities']}")
if str(r["med"]) != "100":
    errs.append(f"med {r['med']}")
for e in errs:
    print("  mismatch:", e, file=sys.stderr)
sys.exit(1 if errs else 0)
PY
  done
}

vw_start_vipwarden_and_wait prepend=0
check_attrs "65101"

vw_info "restarting vipwarden with as_path_prepend: 2"
vw_stop vipwarden TERM 10000
vw_wait_until now 10000 has_neither >/dev/null || vw_fail "routes not withdrawn on SIGTERM"
vw_start_vipwarden_and_wait prepend=2
check_attrs "65101 65101 65101"
vw_pass "AS_PATH [65101] then [65101 65101 65101] (sequence), MED 100, 65101:100, 65101:1:2"
