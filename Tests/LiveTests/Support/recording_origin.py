#!/usr/bin/env python3
"""An HTTP origin for smuggling tests: answers every connection's requests with 200 "ok"
(Content-Length framed) and appends every byte it receives to a log file, so a test can count
the requests that really arrived. Usage: recording_origin.py LOG"""
import socket, sys, threading

log_path = sys.argv[1]
lock = threading.Lock()

def serve(conn):
    conn.settimeout(2.0)
    received = b""
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            received += data
            with lock, open(log_path, "ab") as log:
                log.write(data)
            # One answer per request line seen so far (crude, on purpose: it counts what arrived).
            while b"\r\n\r\n" in received:
                head, _, received = received.partition(b"\r\n\r\n")
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except OSError:
        pass
    finally:
        conn.close()

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print("recording origin listening on 127.0.0.1:%d" % listener.getsockname()[1], flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
