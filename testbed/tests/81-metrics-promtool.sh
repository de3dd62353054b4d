#!/usr/bin/env bash
# /metrics of a running daemon with a live session and checks: a plain
# scrape is text 0.0.4 that `promtool check metrics` accepts; a scrape asking
# for OpenMetrics (as Prometheus does) gets OpenMetrics ending in # EOF; the
# check-duration histogram, VIP state age, thresholds-free VIP, session
# flaps and process metrics are there.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_test_begin "metrics: text 0.0.4 passes promtool, OpenMetrics on request"
command -v promtool >/dev/null || vw_fail "promtool missing (testbed/setup.sh installs Debian's prometheus)"

vw_start_vipwarden_and_wait top_extra="$(vw_api_yaml)"
vw_wait_until now 5000 vw_cli status >/dev/null || vw_fail "vipwarden status: API not answering"

# The metrics come from the status view, refreshed on the daemon's 1 s tick: scrape until the
# first check results are in it (bounded).
for _ in $(seq 1 25); do
  code=$(vw_api_curl GET /metrics) || true
  [[ $code == 200 ]] || vw_fail "GET /metrics: HTTP $code"
  grep -Eq '^vipwarden_check_duration_seconds_count\{check="[^"]+"\} [1-9]' "$VW_RUN_DIR/api-body" && break
  sleep 0.2
done
plain=$VW_RUN_DIR/metrics.txt
cp "$VW_RUN_DIR/api-body" "$plain"
out=$(promtool check metrics <"$plain" 2>&1) || vw_fail "promtool check metrics: $out"
vw_info "promtool check metrics: ok ($(grep -vc '^#' "$plain") samples)"
for want in '^vipwarden_check_duration_seconds_count\{check="[^"]+"\} [1-9]' \
  '^vipwarden_vip_state_age_seconds\{vip="web"\} ' '^vipwarden_peer_flaps_total\{peer="[^"]+"\} 0' \
  '^process_resident_memory_bytes ' '^process_open_fds ' '^process_cpu_seconds_total '; do
  grep -Eq "$want" "$plain" || vw_fail "no line matching $want in /metrics"
done
grep -q '^# EOF' "$plain" && vw_fail "plain scrape has OpenMetrics # EOF"

code=$(vw_api_curl GET /metrics -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5') || true
[[ $code == 200 ]] || vw_fail "GET /metrics (OpenMetrics): HTTP $code"
[[ $(tail -n1 "$VW_RUN_DIR/api-body") == "# EOF" ]] || vw_fail "OpenMetrics scrape does not end with # EOF"
grep -q '^# TYPE vipwarden_build info' "$VW_RUN_DIR/api-body" || vw_fail "OpenMetrics scrape has no info type"
vw_pass "text 0.0.4 passes promtool check metrics; OpenMetrics served on request"
