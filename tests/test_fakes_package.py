"""The fakes package stands alone, and the old import paths of its machinery still work.

The fakes moved into the top-level `fakes` package (issue 20). The documented paths
(`payments.testing`, `notifications.testing`, `backend.testing`) re-export them without
a word; the paths that only held machinery (`backend.fakes`, `backend.netguard`,
`payments.testing.engine[.*]`, `payments.testing.cards`, the forwarder in
`payments.testing.forwarding`) still work for one release and warn; nothing of ours
imports them any more.
"""

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

from django.test import SimpleTestCase

import fakes.contract
import fakes.netguard
import fakes.server
import fakes.stripe.cards
import fakes.stripe.engine
import fakes.stripe.forwarding
import fakes.stripe.resources.charges
import fakes.stripe.wire
import fakes.transport
from fakes.stripe import currencies as stripe_currencies
from payments import currencies

ROOT = Path(__file__).resolve().parent.parent

# Old module -> what it became (the shims themselves are the only files that may name them).
DEPRECATED = {
    "backend.fakes": "fakes.contract, fakes.transport and fakes.server",
    "backend.netguard": "fakes.netguard",
    "payments.testing.engine": "fakes.stripe.engine",
    "payments.testing.cards": "fakes.stripe.cards",
}
SHIMS = {"backend/fakes.py", "backend/netguard.py", "payments/testing/engine.py"}
SHIMS |= {"payments/testing/cards.py", "tests/test_fakes_package.py"}
MOVED_FROM_FORWARDING = {"RETRY_DELAYS", "WebhookForwarder", "http_target"}


def fresh_import(name):
    """Import `name` as a first import would (its module body runs again, so it warns)."""
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]
    return importlib.import_module(name)


class OldPathsTests(SimpleTestCase):
    def assertMovedWarning(self, caught, old):
        messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
        self.assertTrue(
            any(m.startswith(f"{old} has moved to ") for m in messages), (old, messages)
        )

    def test_backend_netguard_is_fakes_netguard_and_warns(self):
        with self.assertWarns(DeprecationWarning) as caught:
            old = fresh_import("backend.netguard")
        self.assertIn("backend.netguard has moved to fakes.netguard", str(caught.warning))
        # Attributed to the importer (a loader's frame under pytest), not to the machinery.
        self.assertNotIn(Path(caught.filename).name, {"moved.py", "netguard.py"})
        self.assertIs(old, fakes.netguard)  # one module: one guard state
        self.assertIs(sys.modules["backend.netguard"], fakes.netguard)

    def test_backend_fakes_re_exports_the_machinery_and_warns(self):
        with self.assertWarns(DeprecationWarning) as caught:
            old = fresh_import("backend.fakes")
        self.assertIn("backend.fakes has moved to fakes.contract", str(caught.warning))
        self.assertIs(old.FakeResponse, fakes.contract.FakeResponse)
        self.assertIs(old.TransportFault, fakes.contract.TransportFault)
        self.assertIs(old.FaultPlan, fakes.contract.FaultPlan)
        self.assertIs(old.RequestsAdapter, fakes.transport.RequestsAdapter)
        self.assertIs(old.mounted, fakes.transport.mounted)
        self.assertIs(old.FakeServer, fakes.server.FakeServer)

    def test_payments_testing_engine_and_its_submodules_are_fakes_stripe_and_warn(self):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fresh_import("payments.testing.engine")
            from payments.testing.engine.resources.charges import Charges
            from payments.testing.engine.wire import decode_form

            from payments.testing.engine import FakeStripe
        self.assertMovedWarning(caught, "payments.testing.engine")
        self.assertIs(sys.modules["payments.testing.engine"], fakes.stripe.engine)
        self.assertIs(sys.modules["payments.testing.engine.wire"], fakes.stripe.wire)
        self.assertIs(FakeStripe, fakes.stripe.engine.FakeStripe)
        self.assertIs(Charges, fakes.stripe.resources.charges.Charges)
        self.assertIs(decode_form, fakes.stripe.wire.decode_form)

    def test_payments_testing_cards_is_fakes_stripe_cards_and_warns(self):
        with self.assertWarns(DeprecationWarning):
            old = fresh_import("payments.testing.cards")
        self.assertIs(old, fakes.stripe.cards)

    def test_the_forwarder_names_warn_and_wsgi_target_stays(self):
        from payments.testing import forwarding

        for name in sorted(MOVED_FROM_FORWARDING):
            with self.subTest(name), self.assertWarns(DeprecationWarning) as caught:
                moved = getattr(forwarding, name)
            self.assertIs(moved, getattr(fakes.stripe.forwarding, name))
            self.assertIn(f"fakes.stripe.forwarding.{name}", str(caught.warning))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            self.assertTrue(callable(forwarding.wsgi_target))
        with self.assertRaises(AttributeError):
            forwarding.no_such_name  # noqa: B018

    def test_documented_paths_re_export_the_fakes(self):
        import fakes.pushwoosh
        import fakes.stripe
        import fakes.todos
        from notifications import testing as notifications_testing
        from payments import testing as payments_testing

        for name in ("fake_stripe", "MockToken", "FakeStripe", "FakeStripeMixin", "cards"):
            self.assertIs(getattr(payments_testing, name), getattr(fakes.stripe, name), name)
        self.assertIs(payments_testing.shared_engine, fakes.stripe.shared_engine)
        self.assertIs(notifications_testing.FakePushProvider, fakes.pushwoosh.FakePushProvider)
        self.assertIs(notifications_testing.FakeTodoApi, fakes.todos.FakeTodoApi)

    def test_importing_the_documented_paths_warns_nothing(self):
        code = (
            "import os, warnings\n"
            "warnings.filterwarnings('error', message='.* has moved to ')\n"
            "os.environ['DJANGO_SETTINGS_MODULE'] = 'backend.settings'\n"
            "import django\n"
            "django.setup()\n"
            "import backend.testing, backend.fakeservices, backend.sandbox, payments.testing,"
            " payments.testing.forwarding, payments.testing.service, notifications.testing\n"
            "import backend.management.commands.fakeservices, backend.management.commands.sandbox\n"
        )
        finished = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        self.assertEqual(finished.returncode, 0, finished.stderr)

    def test_nothing_of_ours_imports_an_old_path(self):
        """Every import statement of the project (functions included) names the new paths."""
        offenders = []
        for path in sorted(ROOT.rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith((".venv/", "build/")) or relative in SHIMS:
                continue
            for node in ast.walk(ast.parse(path.read_text(), relative)):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                    if node.module == "payments.testing.forwarding":
                        names += [a.name for a in node.names if a.name in MOVED_FROM_FORWARDING]
                for name in names:
                    if name in MOVED_FROM_FORWARDING or any(
                        name == old or name.startswith(old + ".") for old in DEPRECATED
                    ):
                        offenders.append(f"{relative}:{node.lineno} imports {name}")
        self.assertEqual(offenders, [])


class IndependenceTests(SimpleTestCase):
    def test_importing_every_fake_loads_neither_django_nor_this_project(self):
        code = (
            "import sys, fakes, fakes.contract, fakes.transport, fakes.server, fakes.netguard,"
            " fakes.stripe, fakes.stripe.coverage, fakes.pushwoosh, fakes.todos,"
            " fakes.pytest_plugin, fakes.service, fakes.service.app\n"
            "roots = {'django', 'rest_framework', 'drf_spectacular', 'knox', 'backend',"
            " 'accounts', 'payments', 'notifications'}\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & roots))\n"
        )
        finished = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/"
        )
        self.assertEqual(finished.returncode, 0, finished.stderr)
        self.assertEqual(finished.stdout.strip(), "[]")

    def test_our_currency_rules_agree_with_the_fakes_copy_of_stripes(self):
        # Two transcriptions of Stripe's table (the fake imports nothing of ours): a typo in
        # either shows here.
        # The fake has Stripe's whole table; ours lists the currencies we accept.
        ours = set(currencies.MINIMUM_AMOUNTS)
        self.assertLessEqual(ours, stripe_currencies.PRESENTMENT)
        self.assertEqual(
            currencies.MINIMUM_AMOUNTS,
            {code: stripe_currencies.MINIMUM_AMOUNTS[code] for code in ours},
        )
        self.assertEqual(currencies.ZERO_DECIMAL, stripe_currencies.ZERO_DECIMAL & ours)
