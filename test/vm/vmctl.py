#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The host's hands on the VM test's guest (test/vm/). Standard library only.

  vmctl.py qmp SOCK COMMAND [ARGS_JSON]   one QMP command; prints its "return" as JSON
  vmctl.py events SOCK LOG                logs every QMP event, one JSON line each, until qemu exits
  vmctl.py agent SOCK TIMEOUT_S CMD...    runs a shell command in the guest through the test
                                          agent (guest-agent.sh); prints its output, exits with its status
  vmctl.py relay IFACE MAC QMP_SOCK LOG LIMIT_S
                                          stands in for the NIC's wake logic: watches IFACE for a
                                          magic packet carrying MAC and then calls system_wakeup

Every call is bounded in time: nothing here waits for ever.
"""
import json
import os
import socket
import sys
import time


def qmp_connect(path, timeout_s=10.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout_s)
    s.connect(path)
    f = s.makefile("rwb", buffering=0)
    json.loads(f.readline())  # the greeting
    f.write(b'{"execute": "qmp_capabilities"}\n')
    while True:
        reply = json.loads(f.readline())
        if "return" in reply:
            return s, f
        if "error" in reply:
            raise SystemExit(f"qmp: {reply['error']}")


def qmp_execute(sock, command, arguments=None):
    """One command on a connection of its own, closed before returning (QEMU
    serves one client per QMP socket at a time): the reply, "return" or "error"."""
    s, f = qmp_connect(sock)
    try:
        request = {"execute": command}
        if arguments is not None:
            request["arguments"] = arguments
        f.write(json.dumps(request).encode() + b"\n")
        while True:
            reply = json.loads(f.readline())
            if "return" in reply or "error" in reply:
                return reply
    finally:
        f.close()
        s.close()


def cmd_qmp(sock, command, args_json=None):
    reply = qmp_execute(sock, command, json.loads(args_json) if args_json else None)
    if "error" in reply:
        print(f"qmp {command}: {reply['error'].get('desc')}", file=sys.stderr)
        return 1
    print(json.dumps(reply["return"]))
    return 0


def cmd_events(sock, log):
    s, f = qmp_connect(sock)
    s.settimeout(None)  # until qemu closes the socket
    with open(log, "a", buffering=1) as out:
        for line in f:
            msg = json.loads(line)
            if "event" in msg:
                msg["host_time"] = time.time()
                out.write(json.dumps(msg) + "\n")
    return 0


def cmd_agent(sock, timeout_s, command):
    """One command per connection; the guest answers with the output, then
    '=== rc N NONCE' on a line of its own. With CLONED_VM_AGENT_LOG set, each
    command's start, end and status are appended there (a stuck guest shows)."""
    nonce = os.urandom(8).hex()
    log = os.environ.get("CLONED_VM_AGENT_LOG")
    started = time.monotonic()

    def note(what):
        if log:
            with open(log, "a") as out:
                out.write(f"{time.strftime('%T')} {nonce} +{time.monotonic() - started:.1f}s {what}\n")

    note(f"sent: {command}")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = started + float(timeout_s)
    buf = b""
    marker = f" {nonce}\n".encode()
    try:
        s.connect(sock)
        s.sendall(f"{nonce} {command}\n".encode())
        while marker not in buf:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                note("the guest's port closed")
                print("vmctl agent: the guest's port closed", file=sys.stderr)
                return 125
            buf += chunk
    except socket.timeout:
        sys.stdout.buffer.write(buf)
        note(f"no answer within {timeout_s} s ({len(buf)} bytes)")
        print(f"vmctl agent: no answer within {timeout_s} s to: {command}", file=sys.stderr)
        return 124
    except OSError as e:
        note(f"failed: {e}")
        print(f"vmctl agent: {e}", file=sys.stderr)
        return 125
    body, _, _ = buf.rpartition(b"=== rc ")
    rc = int(buf[len(body) + 7:].split()[0])
    note(f"rc {rc}")
    sys.stdout.buffer.write(body)
    return rc


def find_magic(frame, mac):
    """The MAC's magic packet anywhere in a frame, as a NIC looks for it."""
    return (b"\xff" * 6 + mac * 16) in frame


def cmd_relay(iface, mac_text, qmp_sock, log, limit_s):
    mac = bytes.fromhex(mac_text.replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    s.settimeout(1.0)
    deadline = time.monotonic() + float(limit_s)
    with open(log, "a", buffering=1) as out:
        out.write(f"relay: watching {iface} for a magic packet for {mac_text}\n")
        while time.monotonic() < deadline:
            try:
                frame = s.recv(65536)
            except socket.timeout:
                continue
            if not find_magic(frame, mac):
                continue
            ethertype = frame[12:14].hex()
            try:
                status = qmp_execute(qmp_sock, "query-status")["return"]["status"]
                out.write(f"relay: {time.time():.3f} magic packet for {mac_text} (ethertype 0x{ethertype}); "
                          f"the VM is {status}\n")
                if status == "suspended":
                    reply = qmp_execute(qmp_sock, "system_wakeup")
                    out.write(f"relay: {time.time():.3f} system_wakeup: {json.dumps(reply)}\n")
            except (OSError, ValueError, KeyError) as e:  # qemu busy or gone: the next packet tries again
                out.write(f"relay: {time.time():.3f} QMP failed: {e}\n")
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "qmp":
        return cmd_qmp(argv[2], argv[3], argv[4] if len(argv) > 4 else None)
    if len(argv) == 4 and argv[1] == "events":
        return cmd_events(argv[2], argv[3])
    if len(argv) >= 5 and argv[1] == "agent":
        return cmd_agent(argv[2], argv[3], " ".join(argv[4:]))
    if len(argv) == 7 and argv[1] == "relay":
        return cmd_relay(*argv[2:7])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
