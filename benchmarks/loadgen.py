"""A small keep-alive HTTP/1.1 load generator: N connections, one request in flight on each.

Runs in its own process (so it never shares the server's GIL) on one asyncio loop
(uvloop when installed), sending prebuilt request bytes and reading each answer by its
Content-Length. Cheap per request (a few µs), so the figure is the server's, not the
client's. Loopback only. Prints one JSON line: {"rps", "requests", "failures", "statuses"}.

    python benchmarks/loadgen.py http://127.0.0.1:PORT/path --method POST --body 'a=1' \
        --header 'Authorization: Bearer sk_test_x' --clients 8 --seconds 3
"""

import argparse
import asyncio
import json
import subprocess
import sys
import time
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def build_request(url, method, body, headers):
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK:
        raise SystemExit(f"loadgen: loopback only, not {parts.hostname}")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += headers
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, parts.hostname, parts.port or 80


async def read_answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    if length:
        await reader.readexactly(length)
    return status


async def run(url, method, body, headers, clients, seconds, expect, limit=None):
    request, host, port = build_request(url, method, body, headers)
    statuses = {}
    counts = [0] * clients
    failures = [0] * clients
    sent = [0]
    start = time.perf_counter()
    deadline = start + seconds

    async def client(index):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                if limit is not None:
                    if sent[0] >= limit:
                        break
                    sent[0] += 1
                writer.write(request)
                status = await read_answer(reader)
                statuses[status] = statuses.get(status, 0) + 1
                if status == expect:
                    counts[index] += 1
                else:
                    failures[index] += 1
        finally:
            writer.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - start
    return {
        "rps": sum(counts) / elapsed,
        "requests": sum(counts),
        "failures": sum(failures),
        "statuses": {str(k): v for k, v in statuses.items()},
    }


def drive(url, seconds, *, method="GET", body=None, headers=(), clients=8, requests=None,
          expect=200, timeout=60):  # fmt: skip
    """Run this load generator in its own process against `url`; its JSON result. Raises
    when any answer is not `expect` (a figure of failed requests would mean nothing)."""
    command = [sys.executable, __file__, url, "--method", method, "--clients", str(clients)]
    command += ["--seconds", str(seconds), "--expect", str(expect)]
    if body is not None:
        command += ["--body", body]
    for header in headers:
        command += ["--header", header]
    if requests:
        command += ["--requests", str(requests)]
    out = subprocess.run(
        command, check=True, capture_output=True, text=True, timeout=seconds + timeout
    )
    result = json.loads(out.stdout)
    if result["failures"]:
        raise RuntimeError(f"{url}: answers other than {expect}: {result['statuses']}")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default="")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--expect", type=int, default=200, help="the status that counts")
    parser.add_argument("--requests", type=int, help="stop after this many (or --seconds)")
    args = parser.parse_args(argv)
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    coroutine = run(
        args.url,
        args.method.upper(),
        args.body.encode(),
        args.header,
        args.clients,
        args.seconds,
        args.expect,
        args.requests,
    )
    if loop_factory:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result = runner.run(coroutine)
    else:
        result = asyncio.run(coroutine)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
