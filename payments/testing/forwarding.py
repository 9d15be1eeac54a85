"""Webhook forwarding to this backend's own endpoint, in process (sandbox mode).

The forwarder itself (WebhookForwarder, http_target, RETRY_DELAYS) is
fakes.stripe.forwarding; `wsgi_target(path)` is the target that calls the backend's
endpoint through its WSGI application, whatever host and port the server listens on.
"""

import io
import sys

from conventions.deprecation import moved_attributes

__getattr__ = moved_attributes(
    __name__,
    dict.fromkeys(("RETRY_DELAYS", "WebhookForwarder", "http_target"), "fakes.stripe.forwarding"),
)


def wsgi_target(path="/api/stripe/webhook/", host="localhost"):
    """POST to this process's own Django application, no socket (full middleware stack)."""
    holder = {}

    def post(payload, signature):
        if "app" not in holder:
            from django.core.wsgi import get_wsgi_application

            holder["app"] = get_wsgi_application()
        environ = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": host,
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": host,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(payload)),
            "HTTP_STRIPE_SIGNATURE": signature,
            "HTTP_USER_AGENT": "Stripe/1.0 (+https://stripe.com/docs/webhooks) sandbox",
            "wsgi.input": io.BytesIO(payload),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        status = []
        result = holder["app"](environ, lambda line, headers, exc_info=None: status.append(line))
        try:
            for _ in result:
                pass
        finally:
            if hasattr(result, "close"):
                result.close()
        return int(status[0].split()[0])

    post.description = f"this backend's {path} (in process)"
    return post


class ForwardingEngine:
    """An engine whose new events go to a WebhookForwarder after each request, as the
    sandbox service forwards them (for tests that forward in process, with no service)."""

    def __init__(self, engine, forwarder):
        self.engine, self.forwarder = engine, forwarder
        forwarder.on_delivered = engine.delivered.add

    def handle(self, method, path, query, body, headers):
        before = self.engine.event_count()
        try:
            return self.engine.handle(method, path, query, body, headers)
        finally:
            emitted = self.engine.events_since(before)
            if emitted:
                self.forwarder.enqueue(emitted)
