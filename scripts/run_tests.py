"""Run the suite under `manage.py test` and under pytest, and check they agree.

Both runners must pass and must have run the same number of tests: that is
the project's promise that the two are interchangeable. Extra arguments go to
both runners (e.g. a test label such as `tests`).

Both run in parallel, one worker process per core (backend.test_runner's
`--parallel auto`, pyproject.toml's `-n auto`); DJANGO_TEST_PROCESSES=N sets the
number of workers for both, and DJANGO_TEST_PROCESSES=1 runs both serially.
"""

import os
import re
import subprocess
import sys

# pytest's closing line, e.g. "1 failed, 412 passed, 18 skipped, 462 subtests passed in 9.81s"
# (-q prints it bare, otherwise between "=" signs; xdist's is the same but for its workers).
PYTEST_SUMMARY = re.compile(r"^=* ?((?:\d+ [a-z]+(?: [a-z]+)?(?:, )?)+) in [\d.]+s\b", re.M)
# The outcomes that are tests run (subtests and warnings are not; deselected were not run).
PYTEST_TEST_OUTCOMES = ("passed", "failed", "skipped", "error", "errors", "xfailed", "xpassed")


def run(command):
    print("$", " ".join(command), flush=True)
    # Pass the output on byte by byte as it comes, so the progress dots show while the runner
    # works (they end no line until the run does), keeping a copy to read the counts from.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    captured = bytearray()
    while chunk := os.read(process.stdout.fileno(), 65536):
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        captured += chunk
    process.stdout.close()
    return process.wait(), captured.decode("utf-8", "replace")


def django_count(output):
    found = re.search(r"^Ran (\d+) tests?", output, re.M)
    return int(found.group(1)) if found else None


def pytest_counts(output):
    """{outcome: count} from pytest's last summary line ({} when there is none)."""
    summaries = PYTEST_SUMMARY.findall(output)
    if not summaries:
        return {}
    counts = {}
    for item in summaries[-1].split(", "):
        number, outcome = item.split(" ", 1)
        counts[outcome] = int(number)
    return counts


def main(labels):
    python = sys.executable
    django_code, django_output = run([python, "manage.py", "test", "--noinput", *labels])
    pytest_code, pytest_output = run([python, "-m", "pytest", "-q", "-rfEs", *labels])
    ran = django_count(django_output)
    counts = pytest_counts(pytest_output)
    if django_code or pytest_code:
        print(f"FAILED: manage.py test exited {django_code}, pytest exited {pytest_code}")
        print(f"manage.py test ran {ran}; pytest {counts or 'printed no summary'}")
        return 1
    pytest_count = sum(counts.get(outcome, 0) for outcome in PYTEST_TEST_OUTCOMES)
    print(f"manage.py test ran {ran}; pytest ran {pytest_count} {counts}")
    if ran != pytest_count:
        print("FAILED: the two runners collected a different number of tests")
        return 1
    passed = counts.get("passed", 0)
    skipped = counts.get("skipped", 0)
    print(f"{passed} passed, 0 failed, {skipped} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
