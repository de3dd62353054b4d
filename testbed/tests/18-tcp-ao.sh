#!/usr/bin/env bash
# TCP-AO (RFC 5925). None of the lab's routers speaks it (BIRD 2.0.12, FRR
# 8.4.4 and GoBGP 3.10 have no TCP-AO), so the end-to-end proof is the
# loopback test between two sockets of ours (cargo test bgp::transport::
# tcp_ao_..., which needs a kernel built with CONFIG_TCP_AO). What the lab
# checks here is the contract on this machine's kernel: with TCP-AO
# configured, either the kernel has it and check-config accepts the config,
# or check-config refuses it with file:line and says the kernel lacks it;
# never a silent downgrade to an unsigned session.
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
vw_skip_on frr "FRR 8.4.4 does not speak TCP-AO; the kernel check runs once, on the BIRD run"
vw_skip_on gobgp "GoBGP 3.10 does not speak TCP-AO; the kernel check runs once, on the BIRD run"
printf '=== %s [%s]: %s\n' "$VW_TEST_NAME" "$VW_ROUTER" "TCP-AO: kernel support or a config error, never a downgrade"
vw_run_dir_init
trap 'vw_test_on_exit $?' EXIT

key=$VW_RUN_DIR/ao.key
(umask 077 && printf 'vw-ao-%s\n' "$$" >"$key")
conf=$VW_RUN_DIR/vipwarden.yaml
VW_PEERS=bird vw_vipwarden_config \
  peer_extra="    tcp_ao: {key_file: $key, send_id: 1, recv_id: 1, algorithm: hmac-sha-256}" >"$conf"
line=$(grep -n "tcp_ao:" "$conf" | cut -d: -f1)
rc=0
out=$("$(vw_vipwarden_bin)" check-config --config "$conf" 2>&1) || rc=$?
printf '%s\n' "$out" | sed 's/^/    check-config: /' >&2
if grep -qF "vw-ao-$$" <<<"$out"; then vw_fail "check-config printed the TCP-AO key"; fi
if zcat /proc/config.gz 2>/dev/null | grep -q '^CONFIG_TCP_AO=y'; then
  ((rc == 0)) || vw_fail "the kernel has TCP-AO but check-config refused the config"
  grep -q "tcp-ao" <<<"$out" || vw_fail "check-config does not show tcp-ao"
  vw_pass "kernel $(uname -r) has TCP-AO: config accepted (routers here cannot speak it; the loopback unit test is the proof)"
fi
((rc != 0)) || vw_fail "check-config accepted tcp_ao on a kernel without TCP-AO"
grep -q "vipwarden.yaml:$line:.*this kernel has no TCP-AO" <<<"$out" ||
  vw_fail "check-config did not say, at line $line, that the kernel has no TCP-AO"
vw_pass "kernel $(uname -r) has no TCP-AO: check-config refuses tcp_ao at vipwarden.yaml:$line with the reason (BIRD 2.0.12, FRR 8.4.4, GoBGP 3.10 do not speak TCP-AO; the loopback unit test is the proof where the kernel has it)"
