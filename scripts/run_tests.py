"""Run the suite under `manage.py test` and under pytest, and check they agree.

Both runners must pass and must have run the same number of tests: that is
the project's promise that the two are interchangeable. Extra arguments go to
both runners (e.g. a test label such as `tests`).
"""

import re
import subprocess
import sys


def run(command):
    print("$", " ".join(command), flush=True)
    # Stream the output as it comes (progress), keeping a copy to read the counts from.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    captured = []
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        captured.append(line)
    return process.wait(), "".join(captured)


def main(labels):
    python = sys.executable
    django_code, django_output = run([python, "manage.py", "test", "--noinput", *labels])
    pytest_code, pytest_output = run([python, "-m", "pytest", "-q", "-rs", *labels])
    if django_code or pytest_code:
        print(f"FAILED: manage.py test exited {django_code}, pytest exited {pytest_code}")
        return 1
    django_count = int(re.search(r"^Ran (\d+) tests?", django_output, re.M).group(1))
    pytest_counts = {
        word: int(number)
        for number, word in re.findall(r"(\d+) (passed|failed|skipped|error)", pytest_output)
    }
    pytest_count = sum(pytest_counts.values())
    print(f"manage.py test ran {django_count}; pytest ran {pytest_count} {pytest_counts}")
    if django_count != pytest_count:
        print("FAILED: the two runners collected a different number of tests")
        return 1
    passed = pytest_counts.get("passed", 0)
    skipped = pytest_counts.get("skipped", 0)
    print(f"{passed} passed, 0 failed, {skipped} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
