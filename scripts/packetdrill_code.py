#!/usr/bin/env python3
"""Run one of packetdrill's generated Python files (its `%{ ... }%` blocks).

packetdrill names the states Linux's way (TCP_SYN_SENT, ...); the FreeBSD suite's blocks use
FreeBSD's names (TCPI_SYN_SENT, TCPI_SYN_RECEIVED, ...), which no packetdrill defines. This
gives FreeBSD's names to the same states, in the Linux numbering the adapter's TCP_INFO uses,
so the blocks check what their authors meant; nothing else in them changes.
Usage (as packetdrill's --code_command): packetdrill_code.py GENERATED.py
"""
import sys

LINUX_STATES = {
    "ESTABLISHED": 1, "SYN_SENT": 2, "SYN_RECEIVED": 3, "FIN_WAIT_1": 4, "FIN_WAIT_2": 5,
    "TIME_WAIT": 6, "CLOSED": 7, "CLOSE_WAIT": 8, "LAST_ACK": 9, "LISTEN": 10, "CLOSING": 11,
}

path = sys.argv[1]
scope = {"__name__": "__main__", "__file__": path}
scope.update({"TCPI_" + name: number for name, number in LINUX_STATES.items()})
with open(path) as f:
    code = compile(f.read(), path, "exec")
exec(code, scope)
