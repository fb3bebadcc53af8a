"""checks.py - the pass/fail counter of the Python end-to-end scripts that
are not pytest suites (tests/deploy.py): check() counts and reports a
failure on stderr, summary() prints the "N passed, N failed" line that
scripts/run_tests.sh and CI read, and gives the exit status."""
import sys


class Checks:
    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, what, ok, detail=""):
        """Count one check; print what failed and why.  Returns ok."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {self.name}: {what}" +
                  (f": {detail}" if detail not in ("", None) else ""),
                  file=sys.stderr)
        return ok

    def summary(self):
        """Print the summary line; 0 when nothing failed, else 1."""
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0
