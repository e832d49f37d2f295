"""The local stack and the development scripts.

Run a script with the project's virtualenv (`.venv/bin/python scripts/stack.py ...`): its
editable install puts the repository root on `sys.path`, so `scripts` imports as a package
from anywhere, as `app` does (`from scripts import stack`).
"""
