"""Stateful fakes of the third-party services this project talks to, for any test suite.

Each fake speaks its provider's wire format through one method,

    handle(method, path, query, body, headers) -> FakeResponse

(fakes.contract; faults scripted with FaultPlan), so one object is reached three ways:
called directly, in process through a requests adapter (fakes.transport), or over real
HTTP on loopback (fakes.server.FakeServer). The fakes:

- fakes.stripe     Stripe's test mode (the engine beneath stripe-python: fake_stripe(),
                   MockToken, ...), its test cards, webhook signing and forwarding;
- fakes.pushwoosh  the Pushwoosh Remote API (messages, devices, an outbox);
- fakes.todos      a JSONPlaceholder-style todo API.

fakes.netguard blocks all but loopback while tests run; fakes.pytest_plugin gives any
pytest suite fixtures for all of it. A fake knows its provider, never its caller: this
package imports no web framework and nothing of the project around it (checked by
import-linter, pyproject.toml).
"""
