"""The docs stay true to the code (docs/testing.md, "The docs' own tests").

The README is short and shows the code of a real test; every include on a docs page
names a file and a section that exist; every environment variable the settings read is
in the settings table; every path and dotted name of ours the docs quote exists; the API
reference is the schema's current rendering; and (a slow journey, on in CI) the README's
tour runs, as written, against a sandbox server started as `make run` starts it.
"""

import importlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import requests
from django.apps import apps
from django.conf import settings
from django.test import SimpleTestCase

from backend.testing import slow_test

ROOT = Path(settings.BASE_DIR)
README = ROOT / "README.md"
DOCS = ROOT / "docs"
GENERATED = {"api-reference.md"}  # rendered from the schema: checked against it instead
OUR_PACKAGES = ("fakes", "backend", "accounts", "payments", "notifications", "tests")
INCLUDE = re.compile(r'^\s*--8<-- "([^":]+)(?::([\w-]+))?"\s*$', re.M)


def pages():
    return sorted(path for path in DOCS.glob("*.md") if path.name not in GENERATED)


def section(path, name):
    """The lines between a file's `--8<-- [start:name]` and `[end:name]` markers."""
    text = Path(ROOT, path).read_text()
    found = re.search(
        rf"^[^\n]*--8<-- \[start:{re.escape(name)}\][^\n]*\n(.*?)^[^\n]*--8<-- \[end:{re.escape(name)}\]",
        text,
        re.S | re.M,
    )
    return found.group(1) if found else None


def quoted(text):
    """Every backticked span's words (code blocks included)."""
    for span in re.findall(r"`([^`\n]+)`", text):
        for word in re.split(r"[\s(),=\[\]{}|<>]+", span):
            word = word.strip("'\"*").rstrip(".:;")
            if word:
                yield word


def resolves(name):
    """A dotted name of ours: a module, an attribute of one, an app's model or a check id."""
    if re.fullmatch(r"backend\.[EW]\d{3}", name):  # a system check's id (backend/checks.py)
        return name.split(".")[1] in (ROOT / "backend" / "checks.py").read_text()
    parts = name.split(".")
    with warnings.catch_warnings():  # the deprecated old paths are documented as such
        warnings.simplefilter("ignore")
        for cut in range(len(parts), 0, -1):
            module = ".".join(parts[:cut])
            try:  # found without running it (backend.wsgi refuses to start in tests)
                spec = importlib.util.find_spec(module)
            except ImportError:
                spec = None
            if spec is None:
                continue
            if cut == len(parts):
                return True
            found = importlib.import_module(module)
            for part in parts[cut:]:
                if not hasattr(found, part):
                    break
                found = getattr(found, part)
            else:
                return True
            break
    if len(parts) == 2:  # an app label and a model: accounts.DeviceSession
        try:
            return apps.get_model(*parts) is not None
        except LookupError:
            return False
    return False


class ReadmeTests(SimpleTestCase):
    def test_the_readme_is_short(self):
        lines = README.read_text().count("\n")
        self.assertLessEqual(lines, 150, "README.md: move the detail into docs/")

    def test_the_readme_shows_the_first_test_as_it_runs(self):
        code = section("tests/docs_examples/test_first_test.py", "first-test")
        blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
        self.assertIn(
            code.rstrip() + "\n",
            [block.rstrip() + "\n" for block in blocks],
            "README.md's first test differs from tests/docs_examples/test_first_test.py",
        )

    def test_the_two_commands_are_at_the_top(self):
        head = "\n".join(README.read_text().splitlines()[:12])
        self.assertIn("make run", head)
        self.assertIn("make test", head)


class DocsPagesTests(SimpleTestCase):
    def test_every_include_names_a_file_and_a_section_that_exist(self):
        count = 0
        for page in [*pages(), README]:
            for path, name in INCLUDE.findall(page.read_text()):
                count += 1
                with self.subTest(page=page.name, include=f"{path}:{name}"):
                    self.assertTrue(Path(ROOT, path).is_file(), path)
                    if name:
                        self.assertTrue(section(path, name), f"no section {name!r} in {path}")
        self.assertGreater(count, 10)

    def test_every_page_is_in_the_nav(self):
        nav = (ROOT / "mkdocs.yml").read_text()
        for page in DOCS.glob("*.md"):
            with self.subTest(page=page.name):
                self.assertTrue(re.search(rf":\s+{re.escape(page.name)}\s*$", nav, re.M))

    def test_every_setting_from_the_environment_is_documented(self):
        source = (ROOT / "backend" / "settings.py").read_text()
        read = set(re.findall(r'\benv(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))
        read |= set(re.findall(r'"([A-Z][A-Z0-9_]+)" (?:not )?in env\b', source))
        self.assertGreater(len(read), 40)
        table = (DOCS / "operations.md").read_text()
        table = table.split("## Settings (environment variables)", 1)[1].split("\n## ", 1)[0]
        documented = {word for row in table.splitlines() if row.startswith("|")
                      for word in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}  # fmt: skip
        self.assertEqual(sorted(read - documented), [], "add them to docs/operations.md")

    def test_every_path_and_name_quoted_exists(self):
        missing = []
        for page in [*pages(), README]:
            for word in set(quoted(page.read_text())):
                if word.startswith(("/", "http", "$", "-")) or "..." in word:
                    continue
                if "/" in word and re.fullmatch(r"[\w./-]+\.(py|toml|yml|md|txt|cfg|ini)", word):
                    if not (ROOT / word).exists():
                        missing.append(f"{page.name}: path {word}")
                elif (
                    re.fullmatch(r"[a-z_]+(\.[A-Za-z_]\w*)+", word)
                    and word.split(".")[0] in OUR_PACKAGES
                ):
                    if not word.endswith((".py", ".toml")) and not resolves(word):
                        missing.append(f"{page.name}: name {word}")
        self.assertEqual(missing, [], "the docs name what no longer exists")


class ApiReferenceTests(SimpleTestCase):
    def test_the_api_reference_is_the_schemas_current_rendering(self):
        sys.path.insert(0, str(ROOT / "scripts"))
        try:
            import render_api_docs
        finally:
            sys.path.remove(str(ROOT / "scripts"))
        fresh = render_api_docs.render(render_api_docs.schema())
        current = render_api_docs.PAGE.read_text()
        self.assertTrue(
            current == fresh,
            "docs/api-reference.md is stale: run python scripts/render_api_docs.py\n"
            + render_api_docs.stale_diff(current, fresh)[:5000],
        )


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shown_pairs(comment):
    """The `"key":value` pairs a README comment such as `# 201 {"id":1,...}` shows."""
    return re.findall(r'"(\w+)":("[^"]*"|\d+|true|false|null)', comment)


@slow_test
class ReadmeTourTests(SimpleTestCase):
    """The README's five-minute tour, its shell blocks run as written, against `make run`'s
    sandbox (the same command: `sandbox serve --runserver`, the sandbox service beside the
    backend) on free ports, with a state folder of its own."""

    def setUp(self):
        if not shutil.which("curl"):
            raise AssertionError("the README tour needs curl: apt-get install -y curl")
        self.folder = self.enterContext(tempfile.TemporaryDirectory())
        self.port, self.service_port = free_port(), free_port()
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("STRIPE_", "PUSH_", "SANDBOX_"))
            },
            "DATABASE_URL": f"sqlite:///{self.folder}/db.sqlite3",
            "SANDBOX_URL": f"http://127.0.0.1:{self.service_port}",
            "SANDBOX_STATE": str(Path(self.folder, "sandbox-state")),
            "DEBUG": "true",
        }
        for name in ("TODOS_API_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"):
            self.env.pop(name, None)
        manage = [sys.executable, str(ROOT / "manage.py")]
        log = open(Path(self.folder, "server.log"), "w")  # closed at cleanup
        self.addCleanup(log.close)
        server = subprocess.Popen(
            [*manage, "sandbox", "serve", "--runserver", "--port", str(self.port)],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.addCleanup(server.wait, 15)
        self.addCleanup(server.terminate)  # SIGTERM: `sandbox serve` stops what it started
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/api/health/", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(Path(self.folder, "server.log").read_text())
            time.sleep(0.2)

    def bash(self, script):
        script = script.replace("localhost:8000", f"localhost:{self.port}")
        script = script.replace("localhost:8765", f"localhost:{self.service_port}")
        finished = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=self.env,
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
        self.assertEqual(finished.returncode, 0, finished.stdout + finished.stderr)
        return finished.stdout

    def assertShows(self, output, comment):
        """The answer holds every key and value the README's comment shows."""
        answer = json.loads(output.strip().splitlines()[-1])
        for key, value in shown_pairs(comment):
            if "..." in value:  # a placeholder: pi_..._secret_...
                continue
            self.assertEqual(answer.get(key), json.loads(value), f"{key} in {comment}")

    def test_the_tour_runs_as_written(self):
        text = README.read_text()
        tour = text.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
        pay, three_d_secure, settled = re.findall(r"^```sh\n(.*?)^```", tour, re.S | re.M)
        without_browser = re.search(r"without a browser:\s*`([^`]+)`", tour, re.S).group(1)
        comments = [
            re.findall(r"^# (.*)$", block, re.M) for block in (pay, three_d_secure, settled)
        ]

        paid = self.bash(pay + '\necho; echo "TOKEN=$TOKEN"')
        token = re.search(r"^TOKEN=(\w+)$", paid, re.M).group(1)
        self.assertShows(paid.rsplit("TOKEN=", 1)[0], comments[0][0])

        signed_in = f"TOKEN={token}\n"
        waiting = self.bash(signed_in + three_d_secure)
        self.assertShows(waiting, comments[1][0])
        intent = json.loads(waiting)["stripe_payment_intent_id"]
        self.assertIn(f"{intent}_secret_", json.loads(waiting)["client_secret"])

        self.bash(" ".join(without_browser.replace("pi_...", intent).split()))
        # The webhook is delivered a moment later, as Stripe's is: read again for a few
        # seconds (a person typing the next command takes longer) before comparing.
        deadline = time.monotonic() + 20
        while True:
            answer = self.bash(signed_in + settled)
            if '"requires_action"' not in answer or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertShows(answer, comments[2][0])
