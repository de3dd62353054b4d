#!/usr/bin/env python3
"""Independent view of an nginx access log for the passive-signal scenarios.

Usage: access_window.py LOG WINDOW_S DURATION_S ERR_ABOVE LAT_ABOVE_S MIN_REQUESTS

Follows LOG (format: combined + " $request_time", as vipwarden's `nginx`
format) from its current end, stamps every line with its arrival time here
(as a live follower does) and keeps a trailing WINDOW_S window. Prints, one a
line, with epoch milliseconds:
  cross error_ratio MS ratio=R n=N       the window's 5xx ratio went above ERR_ABOVE
  cross latency_p99 MS slow=S n=N        more than 1% of the window's requests took
                                         longer than LAT_ABOVE_S (= p99 above it)
  clear error_ratio|latency_p99 MS ...   back at or below the threshold
  tick MS n=N err=E slow=S               once a second
Windows with fewer than MIN_REQUESTS requests count as not above. Exits after
DURATION_S seconds (bounded).
"""
import collections
import os
import sys
import time


def now_ms():
    return int(time.time() * 1000)


def parse(line):
    """(status, request_time_s) or None."""
    try:
        # ... "GET / HTTP/1.1" 503 123 "ref" "ua" 0.001
        tail = line.split('" ', 1)[1]
        status = int(tail.split()[0])
        latency = float(line.rsplit(None, 1)[1])
        return status, latency
    except (ValueError, IndexError):
        return None


def main():
    log, window_s, duration_s, err_above, lat_above, min_req = sys.argv[1:7]
    window_ms = int(float(window_s) * 1000)
    err_above, lat_above, min_req = float(err_above), float(lat_above), int(min_req)
    deadline = time.time() + float(duration_s)
    while not os.path.exists(log) and time.time() < deadline:
        time.sleep(0.05)
    f = open(log, "r", encoding="utf-8", errors="replace")
    f.seek(0, os.SEEK_END)
    win = collections.deque()  # (ms, is_err, is_slow)
    n = err = slow = 0
    above = {"error_ratio": False, "latency_p99": False}
    buf = ""
    last_tick = 0
    while time.time() < deadline:
        chunk = f.read(1 << 20)
        t = now_ms()
        if chunk:
            buf += chunk
            lines = buf.split("\n")
            buf = lines.pop()
            for line in lines:
                rec = parse(line)
                if rec is None:
                    continue
                e, s = rec[0] >= 500, rec[1] > lat_above
                win.append((t, e, s))
                n += 1
                err += e
                slow += s
        while win and win[0][0] <= t - window_ms:
            _, e, s = win.popleft()
            n -= 1
            err -= e
            slow -= s
        enough = n >= min_req
        vals = {"error_ratio": (enough and err / n > err_above, f"ratio={err / n if n else 0:.3f} n={n}"),
                "latency_p99": (n > 0 and slow / n > 0.01, f"slow={slow} n={n}")}
        for name, (is_above, fig) in vals.items():
            if is_above != above[name]:
                above[name] = is_above
                print(f"{'cross' if is_above else 'clear'} {name} {t} {fig}", flush=True)
        if t - last_tick >= 1000:
            last_tick = t
            print(f"tick {t} n={n} err={err} slow={slow}", flush=True)
        if not chunk:
            time.sleep(0.05)


if __name__ == "__main__":
    main()
