#!/usr/bin/env python3
"""WebSocket checks against synack, with the `websockets` library as an independent client.

Run by tests/tun_ws.rs inside a test's network namespace; usable by hand too:

    python3 tests/clients/ws_client.py echo --count 1000
    python3 tests/clients/ws_client.py chat

Each subcommand prints one JSON line of results and exits 0, or prints what went wrong and
exits 1. Every wait has a timeout, so a broken server fails the check instead of hanging it.
"""

import argparse
import base64
import contextlib
import hashlib
import json
import random
import socket
import sys
import threading
import time

from websockets.sync.client import connect

MIB = 1 << 20
TIMEOUT = 60  # seconds for any single wait


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def ws_connect(base, path, max_size=16 * MIB):
    # No proxy from the environment; no compression, so every byte is a frame byte. The
    # library buffers what arrives without limit (max_queue=None): a check that reads one
    # client after another must not look like a stalled reader, which the chat drops.
    return connect(
        base + path,
        max_size=max_size,
        max_queue=None,
        compression=None,
        proxy=None,
        open_timeout=10,
        close_timeout=10,
        ping_interval=None,
    )


def sizes(count, max_size, rng):
    """Edge sizes first (frame-length encodings switch at 126 and 65536), then sizes drawn
    log-uniformly from 0..max_size, so small and large messages are both common."""
    edges = [0, 1, 125, 126, 127, 65535, 65536, 65537, max_size]
    out = [s for s in edges if s <= max_size][:count]
    while len(out) < count:
        out.append(min(max_size, int(2 ** rng.uniform(0, 20.0001)) - 1))
    return out


def text_of(n, rng):
    """About n bytes of UTF-8 text with multibyte characters in it, cheaply."""
    if n == 0:
        return ""
    ascii_part = base64.b64encode(rng.randbytes(max(0, (n * 3) // 4))).decode()[: max(0, n - 9)]
    return ascii_part + "é→😀"[: min(3, n)]


def cmd_echo(a):
    rng = random.Random(a.seed)
    plan = sizes(a.count, a.max, rng)
    total = 0
    digest_sent = hashlib.sha256()
    digest_back = hashlib.sha256()
    start = time.monotonic()
    with ws_connect(a.url, "/ws") as ws:
        for i, n in enumerate(plan):
            msg = text_of(n, rng) if i % 2 else rng.randbytes(n)
            ws.send(msg)
            back = ws.recv(timeout=TIMEOUT)
            check(type(back) is type(msg), f"round trip {i}: sent {type(msg).__name__}, got {type(back).__name__}")
            check(back == msg, f"round trip {i}: {n}-byte message came back different ({len(back)} bytes)")
            raw = msg.encode() if isinstance(msg, str) else msg
            digest_sent.update(raw)
            digest_back.update(back.encode() if isinstance(back, str) else back)
            total += len(raw)
    elapsed = time.monotonic() - start
    check(digest_sent.digest() == digest_back.digest(), "digests differ")
    print(json.dumps({"round_trips": len(plan), "bytes_each_way": total, "seconds": round(elapsed, 3),
                      "sha256": digest_sent.hexdigest()}))


def cmd_big(a):
    """One 16 MiB binary and one 16 MiB text message, then fragmented ones."""
    rng = random.Random(a.seed)
    out = {}
    with ws_connect(a.url, "/ws", max_size=16 * MIB) as ws:
        for kind in ("binary", "text"):
            msg = rng.randbytes(16 * MIB) if kind == "binary" else text_of(16 * MIB, rng)
            check(len(msg if kind == "binary" else msg.encode()) == 16 * MIB, "size")
            start = time.monotonic()
            ws.send(msg)
            back = ws.recv(timeout=TIMEOUT)
            check(back == msg, f"16 MiB {kind} message came back different")
            out[kind + "_seconds"] = round(time.monotonic() - start, 3)
        # An iterable is sent as one message in several frames (a fragmented message).
        ws.send(["frag", "men", "ted ", "téxt"])
        check(ws.recv(timeout=TIMEOUT) == "fragmented téxt", "fragmented text")
        parts = [rng.randbytes(n) for n in (1, 70000, 0, 5)]
        ws.send(parts)
        check(ws.recv(timeout=TIMEOUT) == b"".join(parts), "fragmented binary")
    out["fragmented"] = True
    print(json.dumps(out))


def cmd_ping(a):
    with ws_connect(a.url, "/ws") as ws:
        start = time.monotonic()
        pong = ws.ping(b"are you there")
        check(pong.wait(10), "no pong within 10 s")
        rtt = time.monotonic() - start
        # Data still flows after control frames.
        ws.send("after ping")
        check(ws.recv(timeout=TIMEOUT) == "after ping", "echo after ping")
    print(json.dumps({"pong_ms": round(rtt * 1000, 3)}))


def cmd_close(a):
    out = {}
    for code in (1000, 4001):
        with contextlib.ExitStack() as stack:
            ws = stack.enter_context(ws_connect(a.url, "/ws"))
            ws.send("bye")
            check(ws.recv(timeout=TIMEOUT) == "bye", "echo before close")
            ws.close(code=code, reason="done")
            got = ws.close_code
            check(got == code, f"closed with {code}, server answered {got}")
            out[str(code)] = got
    print(json.dumps({"echoed": out}))


def recv_text(ws, what):
    try:
        m = ws.recv(timeout=TIMEOUT)
    except TimeoutError:
        fail(f"{what}: nothing within {TIMEOUT} s")
    check(isinstance(m, str), f"{what}: not text: {m!r}")
    return m


def cmd_chat(a):
    with contextlib.ExitStack() as stack:
        chat(a, stack)


def chat(a, stack):
    n = a.count
    alice = stack.enter_context(ws_connect(a.url, "/chat"))
    join_a = json.loads(recv_text(alice, "alice's own join"))
    check(join_a.get("event") == "join", f"alice's first message {join_a}")
    bob = stack.enter_context(ws_connect(a.url, "/chat"))
    # Sent the moment both are connected: registration before the 101 means both get it.
    bob.send("bob is here")
    join_b = json.loads(recv_text(bob, "bob's own join"))
    check(join_b == {"event": "join", "id": join_b.get("id")} and join_b["id"] != join_a["id"], f"{join_b}")
    check(json.loads(recv_text(alice, "bob's join at alice")) == join_b, "alice sees bob join")
    check(recv_text(alice, "first message at alice") == "bob is here", "alice got bob's first message")
    check(recv_text(bob, "first message at bob") == "bob is here", "bob got his own first message")

    # Both send at once from two threads; each must see all 2n messages, each sender's in
    # its order, and both must see the same total order.
    def send(ws, name):
        for i in range(n):
            ws.send(f"{name} {i}")

    ta = threading.Thread(target=send, args=(alice, "alice"))
    tb = threading.Thread(target=send, args=(bob, "bob"))
    ta.start()
    tb.start()
    seen = {}
    for name, ws in (("alice", alice), ("bob", bob)):
        seen[name] = [recv_text(ws, f"{name} message {k}") for k in range(2 * n)]
    ta.join(TIMEOUT)
    tb.join(TIMEOUT)
    for name in ("alice", "bob"):
        for sender in ("alice", "bob"):
            mine = [m for m in seen[name] if m.startswith(sender + " ")]
            check(mine == [f"{sender} {i}" for i in range(n)], f"{name} saw {sender}'s messages out of order or missing")
    check(seen["alice"] == seen["bob"], "alice and bob saw different orders")

    bob.close()
    leave = json.loads(recv_text(alice, "bob's leave"))
    check(leave == {"event": "leave", "id": join_b["id"]}, f"leave event {leave}")
    alice.close()
    print(json.dumps({"alice": join_a["id"], "bob": join_b["id"], "messages_each": 2 * n + 1}))


def cmd_stats(a):
    start = time.monotonic()
    with ws_connect(a.url, "/stats") as ws:
        opened = time.monotonic()
        first = json.loads(recv_text(ws, "first snapshot"))
        first_after = time.monotonic() - opened
        check(first_after < 0.5, f"first snapshot took {first_after:.3f} s after the 101")
        me = f"{ws.local_address[0]}:{ws.local_address[1]}"
        check(first.get("you") == me, f"snapshot says you={first.get('you')}, we are {me}")
        rows = [c for c in first["connections"] if c["remote"] == me]
        check(len(rows) == 1, f"our connection {me} not in the table: {first['connections']}")
        row = rows[0]
        check(row["state"] == "ESTABLISHED" and row["local"].endswith(":80"), f"our row: {row}")
        for key in ("bytes_in", "bytes_out", "retransmits", "srtt_ms", "segs_in", "segs_out", "cwnd"):
            check(key in row, f"row lacks {key}")
        check(row["bytes_in"] > 0, "our handshake request should count as bytes in")
        for key in ("segs_in", "segs_out", "connections", "retransmits", "drops"):
            check(key in first["counters"], f"counters lack {key}")
        second = json.loads(recv_text(ws, "second snapshot"))
        gap = time.monotonic() - opened
        check(second["seq"] == first["seq"] + 1, "sequence numbers")
        check(0.8 < gap < 3, f"second snapshot after {gap:.2f} s")
        ours = [c for c in second["connections"] if c["remote"] == me][0]
        check(ours["bytes_out"] >= row["bytes_out"] + 1, "our bytes out grow with each push")
    print(json.dumps({"first_ms": round(first_after * 1000, 3), "connect_ms": round((opened - start) * 1000, 3),
                      "second_s": round(gap, 3), "row": row}))


def raw_handshake(host, port, path, rcvbuf):
    """A client that completes the handshake by hand and then never reads again."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect((host, port))
    key = base64.b64encode(random.randbytes(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        check(chunk, "closed during handshake")
        head += chunk
    check(head.startswith(b"HTTP/1.1 101"), f"handshake: {head!r}")
    return s


def cmd_stall(a):
    """A chat client that stops reading must not hold up the others: it is dropped and
    announced as leaving, and the live client's messages keep flowing."""
    host = a.url.split("//", 1)[1].split("/")[0]
    host, _, port = host.partition(":")
    stalled = raw_handshake(host, int(port or 80), "/chat", 4096)
    with ws_connect(a.url, "/chat") as live:
        stall(a, live)
    stalled.close()


def stall(a, live):
    me = json.loads(recv_text(live, "own join"))["id"]
    msg = "x" * 16000
    left = None
    start = time.monotonic()
    slowest = 0.0
    for i in range(a.count):
        t = time.monotonic()
        live.send(msg)
        while True:
            m = recv_text(live, f"message {i}")
            if m == msg:
                break
            ev = json.loads(m)
            check(ev.get("event") == "leave" and ev.get("id") != me, f"unexpected {ev}")
            left = ev["id"]
        slowest = max(slowest, time.monotonic() - t)
    elapsed = time.monotonic() - start
    check(left is not None, f"the stalled client was not dropped after {a.count} messages")
    print(json.dumps({"messages": a.count, "seconds": round(elapsed, 3), "slowest_round_trip_s": round(slowest, 3),
                      "dropped": left}))


def cmd_many(a):
    """Many chat clients at once: every one gets every other's message."""
    n = a.count
    start = time.monotonic()
    with contextlib.ExitStack() as stack:
        # The library buffers what arrives without limit here (max_queue=None), so a client
        # that has not started reading yet never pushes back on the server.
        clients = []
        for i in range(n):
            ws = stack.enter_context(connect(a.url + "/chat", compression=None, proxy=None, open_timeout=20,
                                             close_timeout=10, ping_interval=None, max_queue=None))
            clients.append(ws)
        connected = time.monotonic() - start
        for i, ws in enumerate(clients):
            ws.send(f"hello from {i}")
        want = {f"hello from {i}" for i in range(n)}
        for i, ws in enumerate(clients):
            got = set()
            while got != want:
                m = recv_text(ws, f"client {i}")
                if m.startswith("hello from "):
                    check(m not in got, f"client {i} got {m!r} twice")
                    got.add(m)
    elapsed = time.monotonic() - start
    print(json.dumps({"clients": n, "connect_s": round(connected, 3), "seconds": round(elapsed, 3),
                      "messages_delivered": n * n}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="ws://10.7.0.2", help="server base URL (default ws://10.7.0.2)")
    p.add_argument("--seed", type=int, default=1)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo", help="round trips of random sizes, text and binary alternately")
    e.add_argument("--count", type=int, default=1000)
    e.add_argument("--max", type=int, default=MIB, help="largest message in bytes (default 1 MiB)")
    sub.add_parser("big", help="16 MiB binary and text messages, fragmented messages")
    sub.add_parser("ping", help="ping/pong")
    sub.add_parser("close", help="close codes 1000 and 4001 come back")
    c = sub.add_parser("chat", help="two clients: order, join/leave")
    c.add_argument("--count", type=int, default=100)
    sub.add_parser("stats", help="first snapshot at once, with our own connection in it")
    m = sub.add_parser("many", help="many chat clients at once")
    m.add_argument("--count", type=int, default=200)
    s = sub.add_parser("stall", help="a stalled chat reader does not block the others")
    s.add_argument("--count", type=int, default=600)
    a = p.parse_args()
    globals()["cmd_" + a.cmd](a)


if __name__ == "__main__":
    main()
