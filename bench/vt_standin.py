#!/usr/bin/env python3
"""A VirusTotal API v3 stand-in on 127.0.0.1 for bench/run.py's virustotal area.

usage: vt_standin.py --port-file F --log F [--delay-ms 0]

Threaded HTTP/1.1 server (keep-alive, one thread per connection, TCP_NODELAY,
every answer written in one send()) that answers

    GET /api/v3/files/{sha256}   header x-apikey: bench-key

like VirusTotal: 200 with a clean file report, or 404 NotFoundError for a
quarter of the hashes (those whose last byte is below 64: not the first byte,
since fimvt asks the hashes queued in one second in sha256 order). A wrong key
gets 401, any other path 400. --delay-ms holds each answer that long in the
connection's thread, so concurrent requests are delayed in parallel, as by a
network. It listens on a free port and writes it to --port-file.

--log gets one line per request, written and flushed once its headers are read
(before the delay):

    <CLOCK_MONOTONIC ns> <sha256 or -> <status> <requests in flight, this one included>

CLOCK_MONOTONIC is the same clock for every process on the machine, so the
driver can set these arrivals beside its own time.monotonic_ns() stamps.
stdlib only.
"""

import argparse
import json
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "bench-key"
HEX = set("0123456789abcdef")
REASON = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


def report(sha):
    stats = {"harmless": 0, "malicious": 0, "suspicious": 0, "undetected": 60, "timeout": 0,
             "confirmed-timeout": 0, "failure": 0, "type-unsupported": 3}
    return {"data": {"id": sha, "type": "file",
                     "links": {"self": f"https://www.virustotal.com/api/v3/files/{sha}"},
                     "attributes": {"last_analysis_stats": stats, "last_analysis_date": 1510680277,
                                    "sha256": sha, "md5": "0" * 32, "sha1": "0" * 40}}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--delay-ms", type=float, default=0)
    a = ap.parse_args()
    lock = threading.Lock()
    log = open(a.log, "a")
    inflight = 0

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):   # no per-request stderr noise
            pass

        def answer(self, status, obj):
            body = json.dumps(obj).encode()
            head = (f"HTTP/1.1 {status} {REASON[status]}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            self.wfile.write(head + body)   # one send(): no Nagle/delayed-ACK stall

        def do_GET(self):
            nonlocal inflight
            prefix = "/api/v3/files/"
            sha = self.path[len(prefix):].lower() if self.path.startswith(prefix) else ""
            if len(sha) != 64 or not set(sha) <= HEX:
                status, sha = 400, None
            elif self.headers.get("x-apikey") != API_KEY:
                status = 401
            else:
                status = 404 if int(sha[-2:], 16) < 64 else 200
            with lock:
                inflight += 1
                log.write(f"{time.monotonic_ns()} {sha or '-'} {status} {inflight}\n")
                log.flush()
            try:
                time.sleep(a.delay_ms / 1000)
                if status == 200:
                    self.answer(200, report(sha))
                else:
                    code = {404: "NotFoundError", 401: "WrongCredentialsError", 400: "BadRequestError"}[status]
                    self.answer(status, {"error": {"code": code, "message": f"{code} for {self.path[:100]}"}})
            finally:
                with lock:
                    inflight -= 1

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(f"{srv.server_address[1]}\n")
    os.rename(a.port_file + ".tmp", a.port_file)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown, daemon=True).start())
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        log.close()


if __name__ == "__main__":
    main()
