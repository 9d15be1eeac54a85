"""Runs the pytest-style examples under pytest itself, in a subprocess, and checks that
every test in them passed: pytest_fixtures_example.py in this project (its conftest.py
fixtures), plugin_example.py in an empty folder (the installed plugin alone, no Django)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase

HERE = Path(__file__).resolve().parent
# pytest11 plugins of our dev dependencies that these examples do not need (each costs
# start-up time); xdist too, so that a parallel default in addopts cannot apply.
UNNEEDED_PLUGINS = ("schemathesis", "hypothesispytest", "anyio", "xdist")


def run_pytest(path, cwd, extra_env=None, disable=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    # SLOW_TESTS=1 names a fixed file for the SQLite test database (backend/settings.py):
    # the one this run itself may be using.
    env.pop("SLOW_TESTS", None)
    env.update(extra_env or {})
    command = [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider"]
    for plugin in (*UNNEEDED_PLUGINS, *disable):
        command += ["-p", f"no:{plugin}"]
    finished = subprocess.run(
        [*command, str(path)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    return finished.returncode, finished.stdout + finished.stderr


class PytestStyleExamplesTest(SimpleTestCase):
    def assertAllPassed(self, code, output, count):
        self.assertEqual(code, 0, output)
        self.assertRegex(output, rf"\b{count} passed\b", output)
        self.assertIsNone(re.search(r"\b(failed|errors?|skipped)\b", output), output)

    def test_the_project_fixtures_example(self):
        with tempfile.TemporaryDirectory() as folder:
            database = {"DATABASE_URL": f"sqlite:///{folder}/db.sqlite3"}  # never the run's own
            code, output = run_pytest(
                HERE / "pytest_fixtures_example.py", settings.BASE_DIR, database
            )
        self.assertAllPassed(code, output, 2)

    def test_the_plugin_example_in_a_suite_without_django(self):
        with tempfile.TemporaryDirectory() as folder:
            shutil.copy(HERE / "plugin_example.py", Path(folder, "test_example.py"))
            Path(folder, "pytest.ini").write_text("[pytest]\n")
            code, output = run_pytest("test_example.py", folder, disable=("django",))
        self.assertAllPassed(code, output, 3)
