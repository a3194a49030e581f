"""Two private network namespaces joined by a veth pair, for the firewall tests
(tests/test_firewall_kernel.py): `fw` holds the ruleset and the listeners, `peer` the clients.

Each namespace is held by a `sleep` started by `unshare --net` (its own time limit ends it if the
test does not) and runs one agent of ours (this file, `agent`) under `nsenter`; the test sends the
agent one JSON command per line and reads one JSON answer per line. Both ends route every address
on-link over the veth, so a flow's real addresses can be put on the two ends as they are."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

IP_PKTINFO = 8  # Linux <linux/in.h>; not exported by Python's socket module
NAMESPACE_LIMIT = 600  # seconds: the holder's sleep, the ceiling of everything inside
ANSWER_TIMEOUT = 60


class Netns:
    def __init__(self, name: str):
        self.name = name
        self.holder = subprocess.Popen(
            [
                "unshare",
                "--net",
                "sh",
                "-c",
                f"ip link set lo up && echo ready && exec sleep {NAMESPACE_LIMIT}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.holder.stdout is not None
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            self.holder.kill()
            raise RuntimeError(
                f"could not make network namespace {name}: {line}{self.holder.communicate()[0]}"
            )
        self.pid = self.holder.pid  # sh exec'd sleep: the same process holds the namespace
        self.agent: subprocess.Popen | None = None

    def argv(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--target={self.pid}", "--net", "--", *argv]

    def run(self, argv: list[str], stdin: str = "", check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(argv), input=stdin, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{argv} in {self.name} exited {done.returncode}: {done.stderr.strip()}")
        return done

    def start_agent(self) -> None:
        self.agent = subprocess.Popen(
            self.argv([sys.executable, str(Path(__file__).resolve()), "agent"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def ask(self, **command) -> dict:
        assert self.agent is not None and self.agent.stdin is not None and self.agent.stdout is not None
        self.agent.stdin.write(json.dumps(command) + "\n")
        self.agent.stdin.flush()
        line = self.agent.stdout.readline()
        if not line:
            raise RuntimeError(f"the agent in {self.name} exited ({self.agent.poll()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"agent in {self.name}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.stdin.close()  # type: ignore[union-attr]
            try:
                self.agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait(timeout=10)
        if self.agent is not None and self.agent.stdout is not None:
            self.agent.stdout.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.holder.wait(timeout=10)
        if self.holder.stdout is not None:
            self.holder.stdout.close()


def veth_pair(fw: Netns, peer: Netns) -> None:
    """fw0 in `fw`, peer0 in `peer`, both up, every address on-link through them."""
    fw.run(["ip", "link", "add", "fw0", "type", "veth", "peer", "name", "peer0", "netns", str(peer.pid)])
    for ns, dev in ((fw, "fw0"), (peer, "peer0")):
        ns.run(["ip", "link", "set", dev, "up"])
        ns.run(["ip", "route", "add", "default", "dev", dev])
        ns.run(["ip", "-6", "route", "add", "default", "dev", dev])


# --- the agent, inside a namespace -----------------------------------------------------------------


class Agent:
    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.listening: set[tuple[str, int]] = set()
        threading.Thread(target=self._serve, daemon=True).start()

    def addrs(self, dev: str, addresses: list[str]) -> dict:
        subprocess.run(["ip", "addr", "flush", "dev", dev], check=True)
        for a in addresses:
            if ":" in a:
                subprocess.run(["ip", "-6", "addr", "add", f"{a}/128", "dev", dev, "nodad"], check=True)
            else:
                subprocess.run(["ip", "addr", "add", f"{a}/32", "dev", dev], check=True)
        # The kernel drops a device's routes with its last address: every address on-link again.
        subprocess.run(["ip", "route", "replace", "default", "dev", dev], check=True)
        subprocess.run(["ip", "-6", "route", "replace", "default", "dev", dev], check=True)
        return {"ok": True}

    def listen(self, tcp: list[int], udp: list[int]) -> dict:
        for transport, ports in (("tcp", tcp), ("udp", udp)):
            for port in ports:
                for fam, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                    key = (f"{transport}{fam}", port)
                    if key in self.listening:
                        continue
                    s = socket.socket(fam, socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if fam == socket.AF_INET6:
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    if transport == "udp":
                        # Told the address a datagram came to, to answer from it.
                        if fam == socket.AF_INET6:
                            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
                        else:
                            s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                    s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: addresses come and go
                    s.bind((any_addr, port))
                    if transport == "tcp":
                        s.listen(64)
                    s.setblocking(False)
                    with self.lock:
                        self.sel.register(s, selectors.EVENT_READ, transport)
                    self.listening.add(key)
        return {"ok": True}

    def _serve(self) -> None:
        while True:
            with self.lock:
                ready = self.sel.select(timeout=0) if self.sel.get_map() else []
            if not ready:
                time.sleep(0.005)
                continue
            for key, _ in ready:
                s = key.fileobj
                try:
                    if key.data == "tcp":
                        conn, _ = s.accept()  # type: ignore[union-attr]
                        conn.close()
                    else:
                        data, anc, _, addr = s.recvmsg(2048, 256)  # type: ignore[union-attr]
                        # The answer leaves from the address the request came to, whatever
                        # other addresses the end holds, as a real server's connected socket does.
                        s.sendmsg([data], [(lvl, kind, raw) for lvl, kind, raw in anc], 0, addr)  # type: ignore[union-attr]
                except OSError:
                    pass

    def connect(self, attempts: list[dict], timeout: float) -> dict:
        results: list[str | None] = [None] * len(attempts)

        def one(i: int, a: dict) -> None:
            try:
                results[i] = _attempt(a, timeout)
            except OSError as e:  # the test shows it as the outcome: neither allowed nor dropped
                results[i] = f"error: {e}"

        threads = [threading.Thread(target=one, args=(i, a)) for i, a in enumerate(attempts)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"results": results}

    def run(self, argv: list[str], stdin: str) -> dict:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
        return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def _attempt(a: dict, timeout: float) -> str:
    """allowed (answered), dropped (nothing came back in time) or refused (RST or ICMP
    unreachable), from the flow's client address and port."""
    fam = socket.AF_INET6 if ":" in a["dst"] else socket.AF_INET
    kind = socket.SOCK_STREAM if a["transport"] == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Closed by a reset, so that no TIME_WAIT keeps the client's address and port.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.bind((a["src"], a["sport"]))
        s.settimeout(timeout)
        if kind == socket.SOCK_STREAM:
            try:
                s.connect((a["dst"], a["dport"]))
                return "allowed"
            except TimeoutError:
                return "dropped"
            except ConnectionRefusedError:
                return "refused"
        s.connect((a["dst"], a["dport"]))
        s.send(b"portwitness")
        try:
            s.recv(2048)
            return "allowed"
        except TimeoutError:
            return "dropped"
        except ConnectionRefusedError:
            return "refused"
    finally:
        s.close()


def agent_main() -> None:
    agent = Agent()
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.pop("op")
        try:
            answer = getattr(agent, op)(**cmd)
        except Exception as e:  # the test reads the error as the answer
            answer = {"error": f"{op}: {type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__" and sys.argv[1:] == ["agent"]:
    agent_main()
