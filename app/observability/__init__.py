"""Logs, metrics and runtime probes."""
