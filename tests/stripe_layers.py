"""Run one check against the fake Stripe at two layers: in process and over loopback HTTP.

- "in-process": `fake_stripe(engine)` installs stripe-python's in-process HTTP client; a raw
  call goes through that client (`stripe.default_http_client.request`), stripe-python's own
  calls (`stripe.Token.create(...)`) through the library;
- "http": the same kind of engine served by `start_fake_services` (fakes.server.FakeServer)
  on 127.0.0.1, reached with `requests` or, for library calls, `stripe_server(url)`.

`for layer in self.layers(): with self.subTest(layer.name): ...` runs the body at both.
"""

import contextlib
import json
from dataclasses import dataclass
from urllib.parse import urlencode

import requests
import stripe
from requests.structures import CaseInsensitiveDict

from backend.fakeservices import start_fake_services
from fakes.stripe import FakeStripe, encode_form, fake_stripe, stripe_globals, stripe_server

SECRET = "sk_test_layers"
PUBLISHABLE = "pk_test_layers"


@dataclass
class Answer:
    status: int
    text: str
    headers: dict  # case-insensitive (HTTP/1.1 servers lower-case header names)

    @property
    def json(self):
        return json.loads(self.text)

    @property
    def error(self):
        return self.json.get("error", {})


class Layer:
    def __init__(self, name, engine, send, library):
        self.name, self.engine, self._send, self.library = name, engine, send, library

    def call(self, method, path, params=None, key=SECRET, headers=None, form=None):
        """A raw call: `key` as a Bearer header (None: no header), params form-encoded (in
        the query for GET/DELETE), or `form`, a ready body."""
        headers = dict(headers or {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        encoded = form if form is not None else encode_form(params or {})
        if method in ("GET", "DELETE"):
            path = f"{path}?{encoded}" if encoded else path
            body = None
        else:
            body = encoded
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return self._send(method, path, headers, body)

    def ok(self, method, path, params=None, **kwargs):
        answer = self.call(method, path, params, **kwargs)
        assert answer.status == 200, (self.name, method, path, answer.status, answer.text)
        return answer.json


class TwoLayersMixin:
    """For SimpleTestCase classes: `self.layers()` yields an in-process and an HTTP Layer,
    each on an engine reset for the check (`layer.engine`)."""

    engine_options = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.served_engine = FakeStripe(**cls.engine_options)
        cls.server = start_fake_services({"/stripe": cls.served_engine})
        cls.session = requests.Session()

    @classmethod
    def tearDownClass(cls):
        cls.session.close()
        cls.server.stop()
        super().tearDownClass()

    def layers(self):
        yield self._in_process()
        yield self._http()

    def _in_process(self):
        engine = FakeStripe(**self.engine_options)

        self.enterContext(fake_stripe(engine, api_key=SECRET))  # until the test ends
        client = stripe.default_http_client  # the in-process client fake_stripe() installs

        def send(method, path, headers, body):
            content, status, answer_headers = client.request(
                method, stripe.DEFAULT_API_BASE + path, headers, body
            )
            text = content.decode() if isinstance(content, bytes) else content
            return Answer(status, text, CaseInsensitiveDict(answer_headers))

        @contextlib.contextmanager
        def library(api_key=SECRET):
            with stripe_globals(api_key=api_key, default_http_client=client):
                yield engine

        return Layer("in-process", engine, send, library)

    def _http(self):
        engine = self.served_engine
        base = self.server.url + "/stripe"

        def send(method, path, headers, body):
            response = self.session.request(method, base + path, headers=headers, data=body)
            return Answer(
                response.status_code, response.text, CaseInsensitiveDict(response.headers)
            )

        @contextlib.contextmanager
        def library(api_key=SECRET):
            with stripe_server(base, api_key=api_key):
                yield engine

        engine.reset()
        return Layer("http", engine, send, library)


def query(params):
    return urlencode(params)
