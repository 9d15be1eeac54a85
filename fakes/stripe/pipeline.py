"""The order of one request: route, authenticate, fault, validate, replay or run, lost answer."""

import base64
import email.policy
import json
import re
import secrets
from email.parser import BytesParser
from urllib.parse import urlencode

from fakes.contract import FakeResponse, TransportFault
from fakes.stripe import expansion
from fakes.stripe import params as declared
from fakes.stripe.routes import router
from fakes.stripe.wire import (
    API_VERSION,
    CARD_DATA_IN_FORM,
    StripeError,
    decode_form,
    encode_json,
    fingerprint,
    invalid,
    redact,
)

NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


VALID_KEY = re.compile(r"(sk|rk|pk)_test_\w+|ek_test_[\w-]+", re.ASCII)
KEY_PREFIX = re.compile(r"(sk|rk|pk|ek)_(test|live)_|[a-z]{2,5}_", re.ASCII)

# Parameters Stripe.js and the mobile SDKs add to client-side calls (telemetry and the key),
# which no server library declares; dropped from publishable-key calls before validation.
CLIENT_PARAMS = ("payment_user_agent", "time_on_page", "guid", "muid", "sid", "referrer",
                 "pasted_fields", "_stripe_version", "_stripe_account")  # fmt: skip


def multipart_as_form(content_type, body):
    """A multipart/form-data body as the equivalent urlencoded form (file parts: filename)."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    pairs = []
    if message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            filename = part.get_filename()
            content = part.get_payload(decode=True) or b""
            value = filename or content.decode("utf-8", "replace")
            pairs.append((name, value))
    return urlencode(pairs)


def declares(endpoint, name):
    return endpoint is not None and name in declared.schema_for(endpoint)[1]


def mask_key(key):
    """An invalid key as Stripe echoes it: its prefix (`sk_test_`), the rest starred but for
    the last four characters, and only when more than eight remain (a short key is all
    stars after its prefix), so a mistyped secret is never echoed whole."""
    found = KEY_PREFIX.match(key)
    prefix = found.group(0) if found else ""
    rest = key[len(prefix) :]
    if len(rest) > 8:
        return prefix + "*" * (len(rest) - 4) + rest[-4:]
    return prefix + "*" * len(rest)


INDENTED = json.JSONEncoder(indent=2).encode

# Errors about a parameter's own value, which need nothing stored to decide (its type, its
# presence, a currency's minimum): the request failed validation, so its idempotency key is
# not spent. Every other answer of an endpoint that ran (a card decline, resource_missing,
# charge_already_refunded, ...) is replayed. The docs do not list which checks count as
# validation; this is the fake's line.
VALIDATION_CODES = frozenset({
    "parameter_unknown", "parameter_invalid_integer", "parameter_invalid_empty",
    "parameter_invalid_string", "parameter_missing", "parameters_exclusive", "amount_too_small",
})  # fmt: skip


def failed_validation(status, payload):
    if status < 400 or status == 402:
        return False
    if isinstance(payload, bytes):
        try:
            payload = json.loads(payload)
        except ValueError:
            return False
    return (payload.get("error") or {}).get("code") in VALIDATION_CODES


class Pipeline:
    def _reset_pipeline(self):
        self._request_headers = None
        # (method, path, raw form or redacted params) of every request handled: the raw form
        # (one short string) unless it carries card data, which is kept only redacted.
        self._requests = []
        self._idempotent = {}  # "api key\nidempotency key" -> [fingerprint, status, body, request id]

    @property
    def requests(self):
        """(method, path, params) of every request handled, card numbers and CVCs redacted."""
        with self._lock:
            return [
                (method, path, decode_form(form) if isinstance(form, str) else form)
                for method, path, form in self._requests
            ]

    def handle(self, method, path, query, body, headers):
        method = method.upper()
        content_type = headers.get("Content-Type") or ""
        if method == "POST" and content_type.lower().startswith("multipart/form-data"):
            # POST /v1/files (files.stripe.com) takes multipart: fields as a form, the file
            # part as its file name (the fake keeps no file contents)
            raw = multipart_as_form(content_type, body)
        else:
            raw = query if method in ("GET", "DELETE") else body.decode("utf-8", "replace")
        if method == "DELETE" and body:
            raw = "&".join(p for p in (query, body.decode("utf-8", "replace")) if p)
        params = decode_form(raw)
        logged = redact(params) if CARD_DATA_IN_FORM.search(raw) else raw
        request_id = "req_" + secrets.token_hex(7)
        with self._lock:
            self._last_emitted = (None, "")
            self._request_id = request_id
            self._idempotency_key = headers.get("Idempotency-Key") if method == "POST" else None
            try:
                self._requests.append((method, path, logged))
                status, payload, extra = self._dispatch(method, path, params, headers, request_id)
            except StripeError as error:
                status, payload, extra = error.status, {"error": error.body}, {}
            except RecursionError:  # parameters nested thousands deep: a bad request
                error = invalid("The request's parameters are nested too deeply.")
                status, payload, extra = error.status, {"error": error.body}, {}
            finally:
                self._request_id = self._idempotency_key = None
                self._end_connected_request()  # (connect.py) the harness sees every account
            if status >= 500:
                extra["Stripe-Should-Retry"] = "true"
            headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION, **extra}
            if not isinstance(payload, bytes):
                payload = self._encode(payload)
            return FakeResponse.json(status, payload, headers)

    def _dispatch(self, method, path, params, headers, request_id):
        endpoint, ids = router().match(method, path)
        if endpoint is None and ids:
            raise invalid(
                f"Unrecognized request URL ({method}: {path}). This path accepts "
                f"{', '.join(sorted(ids))}.",
                status=405,
            )
        if endpoint is None or not endpoint.template.startswith("/v1/"):
            raise invalid(
                f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                "or we can help at https://support.stripe.com/.",
                status=404,
            )
        if self.stripe_mock and self._fixtures:
            self._drop_fixtures()
        from_form = params.get("_stripe_account")  # (dropped with Stripe.js's parameters)
        api_key = self._authenticate(headers, params, endpoint)
        self._account = self._connected_account(headers, from_form, api_key, endpoint)
        self._check_account_path(endpoint, ids)
        self._check_scope(ids)
        if not api_key.startswith(("sk_", "rk_")):
            self._check_client_key(api_key, endpoint, params, ids)
        else:
            self._check_client_secret(endpoint, params, ids)
        fault = self.faults.before_request(method, path)
        if fault == "api_error":
            raise StripeError(500, "api_error", "An unknown error occurred.")
        if fault == "rate_limit":
            raise StripeError(
                429,
                "invalid_request_error",
                "Too many requests hit the API too quickly. We recommend an exponential "
                "backoff of your requests.",
                "rate_limit",
            )
        declared.validate(endpoint, params)
        expand = self._expansions(params.pop("expand", None), endpoint)
        key = headers.get("Idempotency-Key") if method == "POST" else None
        if key and self._account:  # a connected account's keys are its own (connect.py)
            key_scope = f"{api_key}\n{self._account}"
        else:
            key_scope = api_key
        result = self._replay(key_scope, key, method, path, params) if key else None
        if result is None:
            self._request_headers = headers  # EphemeralKeys need the Stripe-Version header
            handler, generic = self._handler_for(endpoint)
            extra = {"Fake-Stripe-Generic": "true"} if generic else {}
            try:
                status, payload = (
                    200,
                    self._expand(handler(endpoint, params, ids), expand, endpoint),
                )
            except StripeError as error:
                status, payload = error.status, {"error": error.body}
            if isinstance(payload, bytes):  # a file (the quote PDF), not JSON
                extra["Content-Type"] = "application/pdf"
            else:
                payload = self._encode(payload)  # once: the answer, and the stored answer
            # Like Stripe, keep the answer once the endpoint ran, whatever it was ("as long
            # as an API method began execution, Stripe's API servers will cache the results
            # of the request regardless of what they were. A request that returns a 400 sends
            # back the same 400", docs.stripe.com/error-low-level), not when the parameters
            # failed validation ("If incoming parameters fail validation ... we don't save
            # the idempotent result", docs.stripe.com/api/idempotent_requests): fixed
            # parameters may then reuse the key.
            if key and not failed_validation(status, payload):
                self._idempotent[f"{key_scope}\n{key}"] = [
                    fingerprint(method, path, params),
                    status,
                    payload,
                    request_id,
                ]
            result = status, payload, extra
        if fault == "lost_response":
            raise TransportFault("lost_response")  # done, but the client never hears
        return result

    def _encode(self, payload):
        """The answer's JSON bytes, indented by two spaces as api.stripe.com answers (tests
        that read raw bodies see what Stripe sends), or compact (`compact_json=True`, faster):
        then an object just snapshotted for its event and unchanged since (handlers emit as
        their last change) reuses that JSON text."""
        if not getattr(self, "compact_json", False):
            return INDENTED(payload).encode()
        emitted, text = self._last_emitted
        if payload is emitted:
            return text.encode()
        return encode_json(payload).encode()

    def _expansions(self, expand, endpoint):
        """The `expand[]` paths, each checked against the declarations (expansion.py) before
        anything runs: a path Stripe would refuse is a 400 and changes nothing."""
        if not expand:
            return []
        if isinstance(expand, dict):  # expand[0]=charge, as stripe-python encodes lists
            expand = [expand[index] for index in sorted(expand, key=str)]
        paths = [str(path) for path in (expand if isinstance(expand, list) else [expand])]
        is_list = endpoint.kind in ("list", "search")
        for path in paths:
            expansion.check(endpoint.resource_class(), path, is_list)
        return paths

    def _expand(self, payload, expand, endpoint=None):
        """Stripe's `expand[]`: an id field (dotted paths descend, `data.` into a list's
        items) becomes a copy of the object; balance transactions are built when expanded.

        Applied before an idempotent answer is stored, so a replay is expanded the same way.
        """
        if not expand or not isinstance(payload, dict):
            return payload
        payload = json.loads(json.dumps(payload))  # the answer's copy, never the stored object
        for path in expand:
            self._expand_path(payload, path.split("."))
        return payload

    def _expand_path(self, obj, parts):
        if not parts:
            return
        if isinstance(obj, list):
            for item in obj:
                self._expand_path(item, parts)
            return
        if not isinstance(obj, dict):
            return
        if obj.get("object") in ("list", "search_result") and parts[0] == "data":
            self._expand_path(obj.get("data"), parts[1:])
            return
        value = obj.get(parts[0])
        if value is None and obj.get("object") and obj.get("id"):
            included = self._included(obj, parts[0])  # sources, subscriptions, tax_ids
            if included is not None:
                value = obj[parts[0]] = included
        if isinstance(value, str) and value:
            found = self.objects.get(value)
            if found is not None:
                value = obj[parts[0]] = json.loads(json.dumps(self.get(value)))
            elif value.startswith("txn_"):
                value = obj[parts[0]] = self.balance_transaction(value) or value
        self._expand_path(value, parts[1:])

    def _included(self, obj, field):
        """An includable list left out of an answer unless expanded (a customer's sources,
        subscriptions and tax_ids since 2020-08-27): the objects stored under the parent."""
        owner = obj["id"]
        url = f"/v1/{obj['object']}s/{owner}/{field}"
        if obj["object"] == "customer" and field == "sources":
            return json.loads(json.dumps(self.page("card", {}, url, (), parent=owner)))
        if obj["object"] == "customer" and field == "subscriptions":
            data = [s for s in reversed(self.all("subscription")) if s.get("customer") == owner]
            return json.loads(json.dumps({"object": "list", "data": data[:10],
                                          "has_more": len(data) > 10, "url": url}))  # fmt: skip
        if obj["object"] == "customer" and field == "tax_ids":
            return json.loads(json.dumps(self.page("tax_id", {}, url, (), parent=owner)))
        return None

    def _authenticate(self, headers, params=None, endpoint=None):
        """The API key: the Authorization header (Bearer, or Basic with the key as the user
        name), else a `key` parameter in the form, as Stripe.js and the mobile SDKs send the
        publishable key (`key=pk_test_...`, no Authorization header; docs.stripe.com/keys:
        publishable keys are for client-side code)."""
        auth = (headers.get("Authorization") or "").strip()
        if auth.startswith("Bearer "):
            key = auth[7:].strip()
        elif auth.startswith("Basic "):
            # `curl -u sk_test_...:`: the key is the user name, the password is empty
            # (docs.stripe.com/api/authentication).
            try:
                key = base64.b64decode(auth[6:].strip()).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        else:
            key = ""
        if params is not None and "key" in params and not declares(endpoint, "key"):
            given = params.pop("key")
            key = key or (given if isinstance(given, str) else "")
        if params is not None and key.startswith("pk_"):
            for name in CLIENT_PARAMS:  # what Stripe.js adds to its calls, not declared
                if not declares(endpoint, name):
                    params.pop(name, None)
        if not key:
            raise StripeError(401, "invalid_request_error", NO_KEY)
        if key.startswith(("sk_live_", "rk_live_")):
            raise StripeError(
                401,
                "invalid_request_error",
                "This is a fake Stripe: it refuses live-mode keys. Use a test key (sk_test_...).",
                "api_key_live_mode",
            )
        if key.startswith("pk_live_"):
            raise StripeError(
                401,
                "invalid_request_error",
                "This is a fake Stripe: it refuses live-mode keys. Use a test key (pk_test_...).",
                "api_key_live_mode",
            )
        if not VALID_KEY.fullmatch(key):
            raise StripeError(
                401,
                "invalid_request_error",
                f"Invalid API Key provided: {mask_key(key)}",
                "api_key_invalid",
            )
        return key

    def _replay(self, api_key, key, method, path, params):
        stored = self._idempotent.get(f"{api_key}\n{key}")
        if stored is None:
            return None
        request, status, payload, original = stored
        if request != fingerprint(method, path, params):
            raise StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        # Stripe names the request that first ran in Original-Request (docs.stripe.com/api/idempotent_requests).
        return status, payload, {"Idempotent-Replayed": "true", "Original-Request": original}
