"""The local stack and the development scripts, and the helpers that the stack, the tests and
the benchmark share: `procs` (start, wait for and stop a process; free ports), `tools`
(where the tools and the download cache are) and `stats` (the one percentile).

Run a script with the project's virtualenv (`.venv/bin/python scripts/quality.py ...`): its
editable install puts the repository root on `sys.path`, so `scripts` imports as a package
from anywhere, as `app` does (`from scripts import stack`). `scripts/stack.py` alone also runs
under a bare Python 3.11: it needs nothing outside the standard library to start.
"""
