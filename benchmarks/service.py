"""The sandbox service as it fills: throughput, memory per charge, restart time.

    python benchmarks/service.py [--stored 100000] [--rounds 3] [--seconds 2] [--fsync]

Runs `python -m fakes.service` processes (state in a temporary directory, as `sandbox
serve` runs it) and drives them with benchmarks/loadgen.py (8 keep-alive clients, its
own process), all on loopback:

1. fills one service with `--stored` charges (POST /v1/charges, as the load does);
2. throughput of POST /v1/charges, interleaved rounds: a fresh empty service (warmed with
   half a second of load) against the filled one (each round's own charges come on top);
   the medians of each side, and the median of each round's filled/empty ratio;
3. memory: the filled service's resident set (VmRSS) above an empty one's, per charge;
4. restart: SIGTERM then start again on the same state, and kill -9 then start again
   (the journal since the last snapshot replayed), seconds until /control/status answers.

Prints a table and one JSON line.
"""

import argparse
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import loadgen

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BODY = "amount=500&currency=usd&source=tok_visa"
HEADERS = ("Authorization: Bearer sk_test_bench", "Content-Type: application/x-www-form-urlencoded")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service:
    def __init__(self, state, fsync=False, compact_after=None):
        self.state, self.fsync, self.compact_after = state, fsync, compact_after
        self.process = None

    def start(self, timeout=120):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "fakes.service", "--port", str(self.port)]
        command += ["--state", self.state]
        if self.fsync:
            command.append("--fsync")
        if self.compact_after:
            command += ["--compact-after", str(self.compact_after)]
        started = time.perf_counter()
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/control/status", timeout=2) as answer:
                    status = json.load(answer)
                    return time.perf_counter() - started, status
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("the service exited") from None
                time.sleep(0.02)
        raise RuntimeError("the service did not start")

    def rss_kib(self):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def status(self):
        with urllib.request.urlopen(self.url + "/control/status", timeout=30) as answer:
            return json.load(answer)

    def stop(self, signum=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(60)
        self.process = None


def load(url, seconds, requests=None, clients=8):
    return loadgen.drive(
        url + "/stripe/v1/charges", seconds, method="POST", body=BODY, headers=HEADERS,
        clients=clients, requests=requests, timeout=600,
    )  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--fsync", action="store_true", help="the service fsyncs every record")
    parser.add_argument("--compact-after", type=float, help="MiB of journal between snapshots")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="pb-service-bench-"))
    figures = {}
    full = Service(str(folder / "full"), args.fsync, args.compact_after)
    empty_rss = None
    try:
        full.start()
        empty_rss = full.rss_kib()
        began = time.perf_counter()
        load(full.url, 3600, requests=args.stored)
        figures["fill_seconds"] = round(time.perf_counter() - began, 1)
        figures["fill_rps"] = round(args.stored / figures["fill_seconds"])
        time.sleep(1)
        stored = full.status()["stripe"]["charge"]
        figures["stored"] = stored
        figures["rss_kib_empty"] = empty_rss
        figures["rss_kib_full"] = full.rss_kib()
        figures["kib_per_charge"] = round((figures["rss_kib_full"] - empty_rss) / stored, 2)
        rates = {"empty": [], "full": []}
        for number in range(args.rounds):
            fresh = Service(str(folder / f"empty-{number}"), args.fsync, args.compact_after)
            fresh.start()
            try:
                load(fresh.url, 0.5)  # warm, as the full one is (a few hundred charges)
                rates["empty"].append(load(fresh.url, args.seconds)["rps"])
            finally:
                fresh.stop()
            rates["full"].append(load(full.url, args.seconds)["rps"])
        figures["rps_empty"] = round(statistics.median(rates["empty"]))
        figures["rps_full"] = round(statistics.median(rates["full"]))
        figures["rps_rounds"] = {k: [round(v) for v in vs] for k, vs in rates.items()}
        figures["full_vs_empty"] = round(figures["rps_full"] / figures["rps_empty"] - 1, 3)
        # each filled round against the empty round just before it: the machine's own drift
        # over the run (other load, a slower minute) moves both sides of a pair alike
        paired = [full / empty for empty, full in zip(rates["empty"], rates["full"], strict=True)]
        figures["full_vs_empty_paired"] = round(statistics.median(paired) - 1, 3)
        figures["stored_after_rounds"] = full.status()["stripe"]["charge"]
        sizes = full.status()["journal"]
        figures["state_bytes"] = sizes
        full.stop(signal.SIGTERM)
        seconds, status = full.start()
        figures["restart_seconds_sigterm"] = round(seconds, 2)
        figures["load_seconds_sigterm"] = status["loaded"]["seconds"]
        assert status["stripe"]["charge"] == figures["stored_after_rounds"], status["stripe"]
        load(full.url, 1.0)  # writes after the restart, then kill -9 mid-journal
        before = full.status()["stripe"]["charge"]
        full.stop(signal.SIGKILL)
        seconds, status = full.start()
        figures["restart_seconds_kill9"] = round(seconds, 2)
        figures["load_seconds_kill9"] = status["loaded"]["seconds"]
        figures["kill9_charges_kept"] = status["stripe"]["charge"] == before
    finally:
        full.stop()
    print(
        f"stored {figures['stored']:,} charges in {figures['fill_seconds']} s ({figures['fill_rps']} req/s)"
    )
    print(f"POST /v1/charges, 8 keep-alive clients: empty {figures['rps_empty']} req/s, "
          f"at {figures['stored']:,}+ stored {figures['rps_full']} req/s ({figures['full_vs_empty']:+.1%}; "
          f"median of the rounds side by side {figures['full_vs_empty_paired']:+.1%})")  # fmt: skip
    print(f"memory: {figures['kib_per_charge']} KiB RSS per stored charge "
          f"({figures['rss_kib_empty'] / 1024:.0f} MiB empty, {figures['rss_kib_full'] / 1024:.0f} MiB full)")  # fmt: skip
    print(f"restart at {figures['stored_after_rounds']:,}: {figures['restart_seconds_sigterm']} s after "
          f"SIGTERM, {figures['restart_seconds_kill9']} s after kill -9 (every charge kept: "
          f"{figures['kill9_charges_kept']})")  # fmt: skip
    print(json.dumps(figures))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
