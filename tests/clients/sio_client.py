#!/usr/bin/env python3
"""Socket.IO checks against synack's server (`synack serve`'s demo namespace).

Run by tests/tun_socketio.rs inside a test's network namespace; usable by hand too:

    python3 tests/clients/sio_client.py steps        # python-socketio, WebSocket transport
    python3 tests/clients/sio_client.py steps --transport polling
    python3 tests/clients/sio_client.py heartbeat --interval-ms 300 --timeout-ms 300
    python3 tests/clients/sio_client.py malformed    # raw packets over `websockets`
    python3 tests/clients/sio_client.py binary --transport polling   # bytes, acked back

Each subcommand prints one JSON line of results and exits 0, or says what went wrong and
exits 1. Every wait has a timeout, so a broken server fails the check instead of hanging it.
"""

import argparse
import json
import queue
import sys
import threading
import time

TIMEOUT = 10  # seconds for any single wait


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def steps(base, transport="websocket"):
    """connect, emit with ack, broadcast to a second client, join a room, a custom
    namespace, disconnect: python-socketio on one transport only (no upgrade)."""
    import socketio

    def client(namespaces=None):
        inbox = queue.Queue()
        sio = socketio.Client(reconnection=False)
        sio.on("chat message", lambda d: inbox.put(("chat message", d)))
        sio.on("room message", lambda d: inbox.put(("room message", d)))
        sio.on("disconnect", lambda *a: inbox.put(("disconnect", None)))
        sio.connect(base, transports=[transport], namespaces=namespaces, wait_timeout=TIMEOUT)
        return sio, inbox

    def expect(inbox, name, data):
        try:
            got = inbox.get(timeout=TIMEOUT)
        except queue.Empty:
            fail(f"no {name} arrived")
        check(got == (name, data), f"expected {(name, data)}, got {got}")

    a, ia = client()
    b, ib = client()
    check(a.connected and b.connected and a.get_sid() != b.get_sid(), "both connected")
    result = {"connected": 2, "transport": a.transport()}

    payload = {"n": 1, "text": "héllo", "list": [1, 2, 3]}
    check(a.call("echo", payload, timeout=TIMEOUT) == payload, "echo ack")
    result["echo_ack"] = True

    a.emit("chat message", "hi from a")
    expect(ia, "chat message", "hi from a")
    expect(ib, "chat message", "hi from a")
    result["broadcast"] = True

    check(a.call("join", "r1", timeout=TIMEOUT) == "r1", "join ack")
    b.emit("room message", {"room": "r1", "text": "to r1"})
    expect(ia, "room message", {"room": "r1", "text": "to r1"})
    time.sleep(0.3)
    check(ib.empty(), f"b is not in r1 but got {list(ib.queue)}")
    result["room"] = True

    c, _ = client(namespaces=["/chat"])
    check(c.call("echo", [1, "x"], namespace="/chat", timeout=TIMEOUT) == [1, "x"], "/chat echo")
    c.disconnect()
    result["namespace"] = True

    b.disconnect()
    a.emit("chat message", "after b left")
    expect(ia, "chat message", "after b left")
    a.disconnect()
    result["disconnected"] = True
    return result


def binary(base, transport="websocket"):
    """bytes out as an argument of `echo` (with a string and bytes nested in a dict), every
    argument acked back by the demo server: byte-exact on either transport (binary frames
    on WebSocket, base64 `b` packets on polling)."""
    import os

    import socketio

    sio = socketio.Client(reconnection=False)
    sio.connect(base, transports=[transport], wait_timeout=TIMEOUT)
    data = os.urandom(150 * 1024)
    small = bytes([0, 1, 2, 253, 254, 255])
    back = sio.call("echo", (data, "label", {"nested": small, "n": 7}), timeout=TIMEOUT)
    check(isinstance(back, (tuple, list)) and len(back) == 3, f"ack arguments: {type(back)}")
    check(back[0] == data, "the 150 KiB bytes came back different")
    check(back[1] == "label", f"second argument {back[1]!r}")
    check(back[2] == {"nested": small, "n": 7}, f"nested bytes: {back[2]!r}")
    result = {"transport": sio.transport(), "bytes": len(data) + len(small)}
    sio.disconnect()
    return result


def raw(base, timeout=TIMEOUT):
    from websockets.sync.client import connect

    url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = connect(url, open_timeout=timeout, close_timeout=2)
    first = ws.recv(timeout=timeout)
    check(first.startswith("0{"), f"open packet: {first}")
    return ws, json.loads(first[1:])


def recv_skip_pings(ws, timeout=TIMEOUT):
    while True:
        m = ws.recv(timeout=timeout)
        if m != "2":
            return m


def heartbeat(base, interval_ms, timeout_ms):
    """A client that stops answering pings is closed within interval + timeout (plus a
    margin); one that answers stays past three intervals."""
    from websockets.exceptions import ConnectionClosed

    silent, opened = raw(base)
    check(opened["pingInterval"] == interval_ms and opened["pingTimeout"] == timeout_ms, f"open: {opened}")
    silent.send("40")
    check(recv_skip_pings(silent).startswith("40"), "connect")
    start = time.monotonic()

    answering, _ = raw(base)
    answering.send("40")
    recv_skip_pings(answering)
    result = {}
    stop = threading.Event()
    pings = [0]
    errors = []

    def answer():
        try:
            while not stop.is_set():
                try:
                    m = answering.recv(timeout=0.05)
                except TimeoutError:
                    continue
                if m == "2":
                    pings[0] += 1
                    answering.send("3")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    t = threading.Thread(target=answer)
    t.start()
    closed_after = None
    limit = (interval_ms + timeout_ms) / 1000
    try:
        while True:
            silent.recv(timeout=limit + 5)  # pings, never answered
    except ConnectionClosed:
        closed_after = time.monotonic() - start
    except TimeoutError:
        fail("the silent client was never closed")
    check(closed_after <= limit + 1.0, f"silent client closed after {closed_after:.2f}s, limit {limit:.2f}s")
    result["silent_closed_after_s"] = round(closed_after, 3)

    # The answering client: still connected after more than three intervals.
    while time.monotonic() - start < 4 * interval_ms / 1000:
        time.sleep(0.05)
    stop.set()
    t.join()
    check(not errors, f"answering client failed: {errors}")
    check(pings[0] >= 3, f"only {pings[0]} pings in three intervals")
    answering.send('421["echo","alive"]')
    check(recv_skip_pings(answering) == '431["alive"]', "answering client still served")
    result["answering_pings"] = pings[0]
    answering.close()
    return result


def malformed(base):
    """Each bad packet gets its documented answer, and a client beside them is unaffected."""
    from websockets.exceptions import ConnectionClosed

    good, _ = raw(base)
    good.send("40")
    recv_skip_pings(good)
    results = {}

    cases = {
        "bad_eio_type": ("9", None),
        "bad_sio_type": ("49", None),
        "broken_json": ('42["chat message"', None),
        "event_not_array": ('42{"a":1}', None),
        # A binary message that no BINARY_EVENT announced.
        "binary_event": (b"\x01\x02\x03", None),
    }
    for name, (packet, error) in cases.items():
        ws, _ = raw(base)
        ws.send("40")
        recv_skip_pings(ws)
        ws.send(packet)
        if error:
            m = recv_skip_pings(ws)
            check(m.startswith("44") and error in m, f"{name}: expected CONNECT_ERROR, got {m}")
        m = recv_skip_pings(ws)
        check(m == "1", f"{name}: expected Engine.IO CLOSE, got {m}")
        try:
            extra = recv_skip_pings(ws)
            fail(f"{name}: expected the close, got {extra}")
        except ConnectionClosed:
            code = ws.close_code
        check(code == 1002, f"{name}: close code {code}")
        results[name] = code

    ws, _ = raw(base)
    ws.send("40/nope,")
    m = recv_skip_pings(ws)
    check(m == '44/nope,{"message":"Invalid namespace"}', f"unknown namespace: {m}")
    # The connection itself stays usable: "/" still connects.
    ws.send("40")
    m = recv_skip_pings(ws)
    check(m.startswith('40{"sid":'), f"connect after a refused namespace: {m}")
    ws.close()
    results["unknown_namespace"] = "CONNECT_ERROR"

    good.send('421["echo","still here"]')
    m = recv_skip_pings(good)
    check(m == '431["still here"]', f"the good client: {m}")
    results["other_client_ok"] = True
    good.close()
    return results


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["steps", "heartbeat", "malformed", "binary"])
    p.add_argument("--base", default="http://10.7.0.2")
    p.add_argument("--interval-ms", type=int, default=25000)
    p.add_argument("--timeout-ms", type=int, default=20000)
    p.add_argument("--transport", choices=["websocket", "polling"], default="websocket")
    a = p.parse_args()
    if a.what == "steps":
        r = steps(a.base, a.transport)
    elif a.what == "binary":
        r = binary(a.base, a.transport)
    elif a.what == "heartbeat":
        r = heartbeat(a.base, a.interval_ms, a.timeout_ms)
    else:
        r = malformed(a.base)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
