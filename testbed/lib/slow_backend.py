#!/usr/bin/env python3
"""Tiny HTTP backend for the latency scenario: answers 200 to every GET, after
sleeping DELAY_S seconds while FLAG_FILE exists.

Usage: slow_backend.py ADDRESS PORT FLAG_FILE DELAY_S
"""
import http.server
import os
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):  # noqa: N802 (http.server API)
        if os.path.exists(self.server.flag):
            time.sleep(self.server.delay)
        body = b"served by slow backend\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


def main():
    addr, port, flag, delay = sys.argv[1:5]
    srv = http.server.ThreadingHTTPServer((addr, int(port)), Handler)
    srv.daemon_threads = True
    srv.flag, srv.delay = flag, float(delay)
    srv.serve_forever()


if __name__ == "__main__":
    main()
