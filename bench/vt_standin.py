#!/usr/bin/env python3
"""A VirusTotal API v3 stand-in for the fimvt benchmarks (bench/virustotal.sh).

usage: vt_standin.py [--host 127.0.0.1] [--port 0] [--port-file F] [--log F]
                     [--summary F] [--delay-ms 0] [--api-key KEY]
                     [--not-found-frac 0.25]

Threaded HTTP/1.1 server (keep-alive, one thread per connection, TCP_NODELAY,
every answer written in one send()) that answers

    GET /api/v3/files/{sha256}   header x-apikey: KEY

like VirusTotal: 200 with a file report (`last_analysis_stats` 0 malicious /
60 undetected) or, for a fixed share of hashes (the ones whose last two hex
digits, as a number, fall below --not-found-frac * 256; not the first two,
since fimvt asks the hashes queued in one second in sha256 order), 404
NotFoundError.
A missing or wrong key gets 401 WrongCredentialsError; any other path 400.
--delay-ms holds each answer that long (sleep in the connection's thread, so
concurrent requests are delayed in parallel), to mimic network latency.

--log: one line per request, written and flushed when the request's headers
have been read, before the delay:

    <CLOCK_MONOTONIC ns> <wall ns> <sha256 or -> <status> <in flight incl. this one> <connection no.>

CLOCK_MONOTONIC is the same clock for every process on the machine, so the
driver can put these next to its own time.monotonic_ns() stamps.
--summary: JSON written at SIGTERM/SIGINT: request counts by status, distinct
hashes, hashes asked more than once, the most requests in flight at once,
connections opened.  --port 0 picks a free port; --port-file receives it once
the server listens.  stdlib only.
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEX = set("0123456789abcdef")


class State:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Lock()
        self.log = open(a.log, "a", buffering=1 << 16) if a.log else None
        self.inflight = 0
        self.max_inflight = 0
        self.by_status = {}
        self.per_hash = {}
        self.connections = 0
        self.requests = 0
        self.first_ns = None
        self.last_ns = None
        self.not_found_below = int(round(a.not_found_frac * 256))

    def begin(self, sha, status, conn):
        t = time.monotonic_ns()
        w = time.time_ns()
        with self.lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            self.requests += 1
            self.by_status[status] = self.by_status.get(status, 0) + 1
            if sha:
                self.per_hash[sha] = self.per_hash.get(sha, 0) + 1
            if self.first_ns is None:
                self.first_ns = t
            self.last_ns = t
            if self.log:
                self.log.write(f"{t} {w} {sha or '-'} {status} {self.inflight} {conn}\n")
                self.log.flush()

    def end(self):
        with self.lock:
            self.inflight -= 1

    def summary(self):
        with self.lock:
            dups = {h: n for h, n in self.per_hash.items() if n > 1}
            return {
                "requests": self.requests,
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "distinct_hashes": len(self.per_hash),
                "hashes_asked_more_than_once": len(dups),
                "extra_requests_for_repeated_hashes": sum(n - 1 for n in dups.values()),
                "repeated_examples": sorted(dups.items(), key=lambda kv: -kv[1])[:5],
                "max_in_flight": self.max_inflight,
                "connections": self.connections,
                "first_mono_ns": self.first_ns,
                "last_mono_ns": self.last_ns,
                "delay_ms": self.a.delay_ms,
                "not_found_frac": self.not_found_below / 256,
            }


def report_body(sha):
    return {
        "data": {
            "id": sha,
            "type": "file",
            "links": {"self": f"https://www.virustotal.com/api/v3/files/{sha}"},
            "attributes": {
                "last_analysis_stats": {
                    "harmless": 0, "malicious": 0, "suspicious": 0, "undetected": 60, "timeout": 0,
                    "confirmed-timeout": 0, "failure": 0, "type-unsupported": 3,
                },
                "last_analysis_date": 1510680277,
                "sha256": sha,
                "md5": "0" * 32,
                "sha1": "0" * 40,
            },
        }
    }


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "vt-standin/1"
        sys_version = ""

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with state.lock:
                state.connections += 1
                self.conn_no = state.connections

        def log_message(self, *args):   # no per-request stderr noise
            pass

        def answer(self, status, obj):
            body = json.dumps(obj).encode()
            reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}[status]
            head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            self.wfile.write(head + body)   # one send(): no Nagle/delayed-ACK stall

        def do_GET(self):
            prefix = "/api/v3/files/"
            sha = None
            if self.path.startswith(prefix):
                cand = self.path[len(prefix):].lower()
                if len(cand) == 64 and set(cand) <= HEX:
                    sha = cand
            key = self.headers.get("x-apikey")
            if sha is None:
                status = 400
            elif state.a.api_key is not None and key != state.a.api_key:
                status = 401
            elif int(sha[-2:], 16) < state.not_found_below:
                status = 404
            else:
                status = 200
            state.begin(sha, status, self.conn_no)
            try:
                if state.a.delay_ms > 0:
                    time.sleep(state.a.delay_ms / 1000)
                if status == 200:
                    self.answer(200, report_body(sha))
                elif status == 404:
                    self.answer(404, {"error": {"code": "NotFoundError",
                                                "message": f"File \"{sha}\" not found"}})
                elif status == 401:
                    self.answer(401, {"error": {"code": "WrongCredentialsError",
                                                "message": "Wrong API key"}})
                else:
                    self.answer(400, {"error": {"code": "BadRequestError",
                                                "message": f"unexpected path {self.path[:100]}"}})
            finally:
                state.end()

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--summary")
    ap.add_argument("--delay-ms", type=float, default=0)
    ap.add_argument("--api-key", default=None, help="required x-apikey value (default: any)")
    ap.add_argument("--not-found-frac", type=float, default=0.25)
    a = ap.parse_args()

    state = State(a)
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    srv = ThreadingHTTPServer((a.host, a.port), make_handler(state))
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, a.port_file)
    print(f"[vt_standin] listening on {a.host}:{port}, delay {a.delay_ms} ms", file=sys.stderr, flush=True)

    def stop(sig, _frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        s = state.summary()
        if state.log:
            state.log.close()
        if a.summary:
            with open(a.summary, "w") as f:
                json.dump(s, f)
        print(f"[vt_standin] stopped: {s['requests']} requests, {s['distinct_hashes']} distinct hashes, "
              f"max in flight {s['max_in_flight']}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
