"""The in-process transport: requests reach a fake through an adapter, with no socket."""

import contextlib
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from fakes.contract import TransportFault

_UNPATCHED_SEND = requests.adapters.HTTPAdapter.send


def requests_send_patched():
    """True while something (the `responses` library) has patched requests' HTTPAdapter.send.

    `responses` intercepts requests by patching HTTPAdapter.send; an adapter mounted on
    a session is not an HTTPAdapter and would bypass it. The default test fakes check
    this and step aside, so a test's own `responses` wins, as it would in production code.
    """
    return requests.adapters.HTTPAdapter.send is not _UNPATCHED_SEND


class RequestsAdapter(BaseAdapter):
    """A requests transport adapter that answers from a fake, with no socket.

    With `defer_to_responses`, requests go to HTTPAdapter.send (that is, to `responses`)
    whenever it is patched: the per-test default fakes use this.
    """

    def __init__(self, fake, prefix, defer_to_responses=False):
        super().__init__()
        self.fake = fake
        self.prefix_path = urlsplit(prefix).path.rstrip("/")
        self.defer_to_responses = defer_to_responses

    def send(self, request, **kwargs):
        if self.defer_to_responses and requests_send_patched():
            return requests.adapters.HTTPAdapter().send(request, **kwargs)
        parts = urlsplit(request.url)
        path = parts.path[len(self.prefix_path) :] or "/"
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        try:
            answer = self.fake.handle(request.method, path, parts.query, body, request.headers)
        except TransportFault as fault:
            if fault.kind in ("timeout", "slow_response"):
                raise requests.exceptions.ReadTimeout(
                    f"fake timeout from {request.url}", request=request
                ) from None
            raise requests.exceptions.ConnectionError(
                f"fake {fault.kind.replace('_', ' ')} from {request.url}", request=request
            ) from None
        response = requests.Response()
        response.status_code = answer.status
        response._content = answer.body
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url = request.url
        response.request = request
        response.reason = ""
        response.encoding = "utf-8"
        return response

    def close(self):
        pass


@contextlib.contextmanager
def mounted(session, prefix, fake):
    """Route `session`'s requests under `prefix` to `fake` for the duration."""
    previous = session.adapters.get(prefix)
    session.mount(prefix, RequestsAdapter(fake, prefix))
    try:
        yield fake
    finally:
        if previous is None:
            session.adapters.pop(prefix, None)
        else:
            session.mount(prefix, previous)
