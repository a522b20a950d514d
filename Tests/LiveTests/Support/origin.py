#!/usr/bin/python3
"""A small HTTP/1.1 origin server for the gateway's live tests (loopback or a test namespace).

GET  /bytes/N    N pseudo-random bytes (seeded by N), Content-Length framed
GET  /sha/N      the SHA-256 (hex) of what /bytes/N returns
GET  /slow/N     N bytes written slowly (1 KiB every 10 ms), to keep a connection busy
POST /sha        the SHA-256 (hex) of the request body (Content-Length or chunked)
Prints "origin listening on HOST:PORT" once bound.
"""
import hashlib, random, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CACHE = {}

def payload(n):
    if n not in CACHE:
        CACHE[n] = random.Random(n).randbytes(n)
    return CACHE[n]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, body, content_type="application/octet-stream"):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) == 3 and parts[1] in ("bytes", "sha", "slow") and parts[2].isdigit():
            n = int(parts[2])
            if parts[1] == "bytes":
                return self.send_body(payload(n))
            if parts[1] == "sha":
                return self.send_body(hashlib.sha256(payload(n)).hexdigest().encode(), "text/plain")
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            data = payload(n)
            for offset in range(0, n, 1024):
                self.wfile.write(data[offset:offset + 1024])
                self.wfile.flush()
                time.sleep(0.01)
            return
        self.send_error(404)

    def do_POST(self):
        digest = hashlib.sha256()
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                digest.update(self.rfile.read(size))
                self.rfile.readline()
        else:
            digest.update(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.send_body(digest.hexdigest().encode(), "text/plain")

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
server = ThreadingHTTPServer((host, int(sys.argv[2]) if len(sys.argv) > 2 else 0), Handler)
server.daemon_threads = True
print(f"origin listening on {host}:{server.server_address[1]}", flush=True)
server.serve_forever()
