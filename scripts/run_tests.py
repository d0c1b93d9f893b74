"""Run the test suite; fail loudly when nothing was collected.

pytest exits 5 when it collects no tests. For this project that can only
mean a broken layout or an import error hidden by filtering, so it counts as
a failure (CI must never go green on an empty run).
"""

import os
import sys

import pytest


def main() -> int:
    args = sys.argv[1:] or ["tests"]
    if os.environ.get("CI"):
        args = ["-p", "no:cacheprovider", *args]
    code = pytest.main(args)
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("run_tests: no tests were collected - treating as failure", file=sys.stderr)
        return 1
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
