"""FakeServer: fakes over real HTTP on 127.0.0.1, each under its own path prefix (uvicorn)."""

import asyncio
import contextlib
import gc
import signal
import socket
import threading
import time

from fakes.contract import FakeResponse, TransportFault


class _Headers(dict):
    """Request headers, looked up case-insensitively (as http.server's and requests' are)."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name):
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name):
        return dict.__contains__(self, name.lower())


# A fake's store only grows: every full collection would walk all of it again, so a long
# run slows down as it stores. A process that only serves fakes moves what has survived
# into the permanent generation every so often.
FREEZE_EVERY = 2000


def _freeze_long_lived():
    gc.collect(1)  # collect young cyclic garbage first, so it is not frozen with the rest
    gc.freeze()


class FakeApp:
    """A tiny ASGI application over the fakes' `handle()` contract, each under its prefix."""

    def __init__(self, mounts, freeze_gc=False):
        self.mounts = {prefix.rstrip("/"): fake for prefix, fake in mounts.items()}
        self._prefixes = sorted(self.mounts, key=len, reverse=True)  # longest match wins
        self.freeze_gc = freeze_gc
        self._served = 0

    def route(self, path):
        for prefix in self._prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return prefix, self.mounts[prefix]
        return None, None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not served
        if self.freeze_gc:
            self._served += 1
            if self._served % FREEZE_EVERY == 0:
                _freeze_long_lived()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        # The raw path, as http.server handed it: fakes route on what the client sent.
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if raw else scope["path"]
        path = path.partition("?")[0]
        mount, fake = self.route(path)
        if fake is None:
            answer = FakeResponse.json(
                404,
                {"error": {"type": "invalid_request_error", "message": f"No fake at {path}"}},
            )
        else:
            headers = _Headers(
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in scope["headers"]
            )
            try:
                answer = fake.handle(
                    scope["method"],
                    path[len(mount) :] or "/",
                    scope["query_string"].decode("latin-1"),
                    body,
                    headers,
                )
            except TransportFault as fault:
                if fault.kind == "slow_response" and fault.answer is not None:
                    await asyncio.sleep(fault.delay)  # the client has given up by now
                    answer = fault.answer
                else:
                    await _drop(scope, receive)  # no answer at all, as a dead network gives
                    return
        response_headers = [
            (name.encode("latin-1"), str(value).encode("latin-1"))
            for name, value in answer.headers.items()
        ]
        response_headers.append((b"content-length", str(len(answer.body)).encode()))
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": response_headers}
        )
        await send({"type": "http.response.body", "body": answer.body})


async def _drop(scope, receive):
    """Close the connection without a byte of answer, then wait until the server has seen it."""
    scope["fakes.transport"].close()
    while (await receive())["type"] != "http.disconnect":
        pass


def _protocol_class():
    """uvicorn's httptools protocol, handing the app its connection so a fault can drop it."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class FakeHttpProtocol(HttpToolsProtocol):
        def connection_made(self, transport):
            # uvicorn writes a response's head and body separately: without TCP_NODELAY the
            # body waits for the client's delayed ACK (40 ms a request on Linux).
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().connection_made(transport)

        def on_headers_complete(self):
            self.scope["fakes.transport"] = self.transport
            super().on_headers_complete()

    return FakeHttpProtocol


class FakeServer:
    """Serves fakes over real HTTP on loopback, each under its own prefix.

    uvicorn (httptools parser, HTTP/1.1 keep-alive) runs the fakes in one event loop,
    in a daemon thread (`start()`/`stop()`, or a context manager) or in the calling
    thread (`serve_forever()`, for a process that only serves). The socket is bound in
    the constructor, so a taken port fails there with OSError, and `.url` is known
    before the server runs. Fakes are plain synchronous objects: each request runs
    to completion on the loop, so a fake sees one request at a time. `freeze_gc=True`
    (for a process that does nothing but serve) keeps a growing store from slowing
    every garbage collection down; it freezes the whole process's objects, so tests,
    which share their process, leave it off.
    """

    def __init__(self, mounts, host="127.0.0.1", port=0, *, freeze_gc=False):
        self.app = FakeApp(mounts, freeze_gc=freeze_gc)
        self.mounts = self.app.mounts
        self.socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(1024)
        except OSError:
            self.socket.close()
            raise
        self.server_address = self.socket.getsockname()
        self._server = None
        self._thread = None

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path):
        return self.app.route(path)

    def _uvicorn(self):
        import uvicorn

        config = uvicorn.Config(
            self.app,
            http=_protocol_class(),
            loop="uvloop" if _has_uvloop() else "asyncio",
            lifespan="off",
            access_log=False,
            log_config=None,  # leave the process's logging (a framework's logging set-up) alone
            log_level="warning",
            server_header=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        return self._server

    def serve_forever(self):
        """Serve in this thread until SIGINT or SIGTERM, then return, so that the caller's
        clean-up runs (the sandbox service writes its snapshot there). uvicorn shuts down
        gracefully and then raises the signal it caught again; for SIGTERM, whose default
        action ends the process on the spot, a handler turns that into KeyboardInterrupt."""
        main = threading.current_thread() is threading.main_thread()  # (signals go there)
        previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
        try:
            self._uvicorn().run(sockets=[self.socket])
        except KeyboardInterrupt:
            pass
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)

    def start(self):
        """Serve in a daemon thread; returns self (use as a context manager to stop)."""
        server = self._uvicorn()
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.001)
        if not server.started:
            self.stop()
            raise RuntimeError("the fake server did not start")
        return self

    def stop(self):
        if self._server is not None:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()

    def server_close(self):
        self.socket.close()

    def __enter__(self):
        return self.start() if self._thread is None else self

    def __exit__(self, *exc):
        self.stop()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _has_uvloop():
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True
