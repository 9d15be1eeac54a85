"""fakes.pytest_plugin as another project would use it: a plain pytest suite, no Django.

Each test writes a tiny test file into a temporary directory (no conftest.py, no settings)
and runs pytest on it in a subprocess with the other plugins our dev dependencies install
turned off (pytest-django; schemathesis, hypothesis and anyio, which also cost a second of
start-up each run), then checks every test in it passed. The suites reach only loopback; the guard's own test stubs the real
socket functions beneath it, so a guard that let a call through would send nothing.
"""

import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from django.test import SimpleTestCase

FIXTURES_SUITE = """
import requests
import stripe

from fakes import netguard
from fakes.pushwoosh import FAKE_APPLICATION, FAKE_AUTH, FAKE_PUSH_URL
from fakes.stripe import stripe_server
from fakes.todos import FAKE_TODOS_URL


def test_the_guard_is_off_unless_asked_for():
    assert not netguard.is_enabled()


def test_stripe_python_answers_from_the_engine(fakes_stripe):
    intent = stripe.PaymentIntent.create(
        amount=500, currency="usd", payment_method="pm_card_visa", confirm=True
    )
    assert intent.status == "succeeded"
    assert [charge["amount"] for charge in fakes_stripe.charges] == [500]
    try:
        stripe.Charge.create(amount=500, currency="usd", source="tok_chargeDeclined")
    except stripe.CardError as error:
        assert error.code == "card_declined"
    else:
        raise AssertionError("a declined card was charged")


def test_every_test_gets_a_new_engine(fakes_stripe):
    assert fakes_stripe.charges == []
    assert stripe.default_http_client.fake is fakes_stripe


def test_the_stripe_globals_are_restored_after_the_fixture():
    assert stripe.default_http_client is None


def test_pushwoosh_on_the_session(fakes_session, fakes_pushwoosh):
    request = {
        "application": FAKE_APPLICATION,
        "auth": FAKE_AUTH,
        "notifications": [{"content": "hello", "conditions": [["UserID", "EQ", 7]]}],
    }
    answer = fakes_session.post(FAKE_PUSH_URL + "createMessage", json={"request": request}, timeout=5)
    assert answer.json()["status_code"] == 200
    assert fakes_pushwoosh.received_by(7) == ["hello"]
    refused = fakes_session.post(
        FAKE_PUSH_URL + "createMessage", json={"request": {**request, "auth": "wrong"}}, timeout=5
    )
    assert refused.status_code == 401
    assert len(fakes_pushwoosh.outbox) == 1


def test_todos_on_the_session(fakes_session, fakes_todos):
    todos = fakes_session.get(FAKE_TODOS_URL + "todos", params={"userId": 1}, timeout=5).json()
    assert len(todos) == 20 and {todo["userId"] for todo in todos} == {1}
    fakes_todos.todos = []
    assert fakes_session.get(FAKE_TODOS_URL + "todos", timeout=5).json() == []


def test_the_server_serves_every_fake_on_loopback(fakes_server):
    assert fakes_server.url.startswith("http://127.0.0.1:")
    with stripe_server(fakes_server.url + "/stripe"):
        charge = stripe.Charge.create(amount=700, currency="usd", source="tok_visa")
    assert fakes_server.mounts["/stripe"].charges[0]["id"] == charge.id
    user = requests.get(fakes_server.url + "/todos-api/users/1", timeout=5).json()
    assert user["id"] == 1
    pushed = requests.post(fakes_server.url + "/push/createMessage", json={}, timeout=5)
    assert pushed.status_code == 400
"""

GUARD_SUITE = """
import pytest
import requests

from fakes import netguard


def refuse(*args, **kwargs):
    raise AssertionError("the guard let a call through")


def test_the_guard_blocks_before_any_dns_look_up(monkeypatch):
    assert netguard.is_enabled()  # before anything is sent
    for name in ("_real_connect", "_real_connect_ex", "_real_getaddrinfo", "_real_gethostbyname"):
        monkeypatch.setattr(netguard, name, refuse)
    with pytest.raises(netguard.NetworkBlocked, match="api.stripe.com:443"):
        requests.get("https://api.stripe.com/v1/charges", timeout=5)


def test_loopback_is_allowed(fakes_server):
    assert netguard.is_enabled()
    assert requests.get(fakes_server.url + "/todos-api/todos/1", timeout=5).json()["id"] == 1


def test_a_test_can_lift_the_guard(fakes_allow_network):
    assert not netguard.is_enabled()
"""


# pytest11 entry points of our dev dependencies, none of which a user's suite needs here.
OTHER_PLUGINS = ("django", "schemathesis", "hypothesispytest", "anyio")


class PytestPluginTests(SimpleTestCase):
    def run_suite(self, suite, *options, ini=""):
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "test_suite.py").write_text(textwrap.dedent(suite))
            Path(folder, "pytest.ini").write_text("[pytest]\n" + ini)
            environment = {
                name: value
                for name, value in os.environ.items()
                if name not in ("DJANGO_SETTINGS_MODULE", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
            }
            environment.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
            for plugin in OTHER_PLUGINS:
                command += ["-p", f"no:{plugin}"]
            command += [*options, "test_suite.py"]
            finished = subprocess.run(
                command,
                cwd=folder,
                env=environment,
                capture_output=True,
                text=True,
                timeout=120,
            )
        output = finished.stdout + finished.stderr
        self.assertEqual(finished.returncode, 0, output)
        return output

    def assertPassed(self, output, count):
        self.assertRegex(output, rf"\b{count} passed\b", output)
        self.assertIsNone(re.search(r"\b(failed|error|skipped)\b", output), output)

    def test_fixtures_from_the_installed_entry_point(self):
        output = self.run_suite(FIXTURES_SUITE)  # no -p: the pytest11 entry point loads it
        self.assertPassed(output, 7)

    def test_network_guard_from_the_command_line(self):
        output = self.run_suite(GUARD_SUITE, "-p", "fakes.pytest_plugin", "--fakes-netguard")
        self.assertPassed(output, 3)

    def test_network_guard_from_the_ini_file(self):
        output = self.run_suite(GUARD_SUITE, ini="fakes_netguard = true\n")
        self.assertPassed(output, 3)

    def test_the_plugin_can_be_turned_off(self):
        suite = "def test_no_fixture(request):\n    request.getfixturevalue('fakes_stripe')\n"
        with self.assertRaises(AssertionError) as caught:
            self.run_suite(suite, "-p", "no:fakes.pytest_plugin")
        self.assertIn("fixture 'fakes_stripe' not found", str(caught.exception))
