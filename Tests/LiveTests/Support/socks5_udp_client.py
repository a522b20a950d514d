#!/usr/bin/python3
"""SOCKS5 UDP ASSOCIATE against a running gateway, for GatewayLiveTests.

usage: socks5_udp_client.py GATEWAY_PORT USER PASSWORD            (the checks below)
       socks5_udp_client.py GATEWAY_PORT USER PASSWORD --refused   (expect reply 7)
       socks5_udp_client.py GATEWAY_PORT USER PASSWORD --limit-one (gateway allows one association)

Runs a UDP echo server on 127.0.0.1, then
  1. PySocks (an independent client): 50 datagrams to the echo server by address, one of
     60,000 bytes, and 10 by name (localhost, resolved by the gateway);
  2. its own client, byte by byte after RFC 1928: a fragment, a refused destination, a
     datagram from another port, a datagram to the relay's outward socket from a host the
     client never sent to, and a datagram after the control connection closed — none of
     which may reach the echo server or come back.
Prints one line per check ("ok ..." or "FAIL ..."); exits 1 if any failed.
"""
import socket
import struct
import sys
import threading
import time

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
failures = []


def check(condition, text):
    print(("ok " if condition else "FAIL ") + text, flush=True)
    if not condition:
        failures.append(text)


def control_connection():
    """Greeting, username/password, UDP ASSOCIATE 0.0.0.0:0; returns (socket, reply code, relay)."""
    tcp = socket.create_connection(("127.0.0.1", port), timeout=5)
    tcp.sendall(bytes([5, 1, 2]))
    assert tcp.recv(2) == bytes([5, 2])
    tcp.sendall(bytes([1, len(user)]) + user.encode() + bytes([len(password)]) + password.encode())
    assert tcp.recv(2) == bytes([1, 0])
    tcp.sendall(bytes([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]))
    reply = tcp.recv(10)
    relay = (socket.inet_ntoa(reply[4:8]), struct.unpack("!H", reply[8:10])[0]) if len(reply) == 10 else None
    return tcp, reply[1], relay


if len(sys.argv) > 4 and sys.argv[4] == "--refused":
    tcp, code, _ = control_connection()
    check(code == 7, f"UDP ASSOCIATE answered with reply {code} (7: command not supported)")
    sys.exit(1 if failures else 0)

if len(sys.argv) > 4 and sys.argv[4] == "--limit-one":
    first, code, _ = control_connection()
    check(code == 0, f"the first association is taken (reply {code})")
    second, code, _ = control_connection()
    check(code == 1, f"a second one while the first is open gets reply {code} (1: general failure)")
    first.close()
    time.sleep(0.5)
    third, code, _ = control_connection()
    check(code == 0, f"once the first closed, a new one is taken (reply {code})")
    sys.exit(1 if failures else 0)

# The echo server: answers b"echo:" + payload, remembers every source it heard from.
echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
echo.bind(("127.0.0.1", 0))
echo_port = echo.getsockname()[1]
heard = []


def serve():
    while True:
        data, source = echo.recvfrom(65535)
        heard.append((data, source))
        echo.sendto(b"echo:" + data[:65000], source)


threading.Thread(target=serve, daemon=True).start()

# 1. PySocks.
import socks  # noqa: E402



def pysocks_echoes(host, count, rdns):
    """Sends `count` datagrams to the echo server at `host` through PySocks; returns the
    socket and how many echoes came back right (from the echo server's address)."""
    sock = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.set_proxy(socks.SOCKS5, "127.0.0.1", port, rdns=rdns, username=user, password=password)
    sock.settimeout(3)
    answered = 0
    for i in range(count):
        sock.sendto(b"ping %d" % i, (host, echo_port))
        data, source = sock.recvfrom(65535)
        answered += data == b"echo:ping %d" % i and source == ("127.0.0.1", echo_port)
    return sock, answered


by_address, answered = pysocks_echoes("127.0.0.1", 50, rdns=False)
check(answered == 50, f"PySocks by address: {answered}/50 echoes, each from the echo server's address")
big = bytes(range(256)) * 234 + bytes(96)   # 60,000 bytes
by_address.sendto(big, ("127.0.0.1", echo_port))
data, _ = by_address.recvfrom(65535)
check(data == b"echo:" + big, f"PySocks 60,000-byte datagram came back whole ({len(data) - 5} bytes)")
by_address.close()
by_name, answered = pysocks_echoes("localhost", 10, rdns=True)
check(answered == 10, f"PySocks by name (localhost, resolved by the gateway): {answered}/10 echoes")
by_name.close()


# 2. Our own client.
def header(host, peer_port, fragment=0):
    return struct.pack("!HB", 0, fragment) + bytes([1]) + socket.inet_aton(host) + struct.pack("!H", peer_port)


def nothing_comes(sock, wait=0.5):
    sock.settimeout(wait)
    try:
        sock.recvfrom(65535)
        return False
    except (socket.timeout, ConnectionRefusedError):
        return True


tcp, code, relay = control_connection()
check(code == 0 and relay is not None, f"own client: UDP ASSOCIATE succeeded, relay {relay}")
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.bind(("127.0.0.1", 0))
client.settimeout(3)
client.sendto(header("127.0.0.1", echo_port) + b"first", relay)
data, _ = client.recvfrom(65535)
check(data[10:] == b"echo:first" and data[:10] == header("127.0.0.1", echo_port), "own client: an echo with the echo server's address as its header")
outward = heard[-1][1]   # the relay's outward socket, as the echo server saw it
before = len(heard)

client.sendto(header("127.0.0.1", echo_port, fragment=1) + b"fragment", relay)
check(nothing_comes(client), "a fragment (FRAG=1) is dropped")
client.sendto(header("127.0.0.2", echo_port) + b"refused", relay)
check(nothing_comes(client), "a datagram to a refused destination (127.0.0.2, not allowed) is dropped")
stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
stranger.bind(("127.0.0.1", 0))
stranger.sendto(header("127.0.0.1", echo_port) + b"stranger", relay)
check(nothing_comes(stranger), "a datagram from another port than the client's is dropped")
stranger.sendto(b"unsolicited", outward)
check(nothing_comes(client), "a datagram to the outward socket from a host the client never sent to does not reach the client")
time.sleep(0.2)
check(len(heard) == before, f"the echo server heard nothing of the dropped datagrams ({len(heard) - before} extra)")

client.sendto(header("127.0.0.1", echo_port) + b"second", relay)
data, _ = client.recvfrom(65535)
check(data[10:] == b"echo:second", "the association still relays after the drops")

tcp.close()
time.sleep(0.5)
client.sendto(header("127.0.0.1", echo_port) + b"after close", relay)
check(nothing_comes(client) and heard[-1][0] == b"second", "after the control connection closed, nothing is relayed")
sys.exit(1 if failures else 0)
