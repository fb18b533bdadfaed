#!/usr/bin/env python3
"""Types lines into an interactive shell, as a user would, and prints the
transcript: runs CMD in a pseudo-terminal (rebar3 shell reads no piped
stdin), waits for the Erlang prompt "N> ", then sends each line of stdin,
one per prompt. Exits 1 if the shell does not prompt within the timeout.
    scripts/shell-session.py TIMEOUT_S CMD... < lines
"""
import os
import pty
import re
import select
import signal
import sys
import time

PROMPT = re.compile(rb"\d+> $")
# rebar3 shell prints "Booted APP" after the first prompt, and input typed
# before that is lost: the first line waits for the output to settle.
SETTLE_S = 1.0


def main():
    timeout, cmd = float(sys.argv[1]), sys.argv[2:]
    lines = sys.stdin.read().splitlines() + ["halt()."]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    out, sent, mark, last = b"", 0, 0, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the shell exited
                break
            if not chunk:
                break
            out, last = out + chunk, time.monotonic()
        if sent == 0:
            ready_for_line = b"1> " in out and time.monotonic() - last >= SETTLE_S
        else:
            ready_for_line = PROMPT.search(out, mark) is not None
        if sent < len(lines) and ready_for_line:
            os.write(fd, lines[sent].encode() + b"\n")
            sent, mark = sent + 1, len(out)
    else:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    sys.stdout.write(out.decode(errors="replace"))
    return 0 if sent == len(lines) else 1


if __name__ == "__main__":
    sys.exit(main())
