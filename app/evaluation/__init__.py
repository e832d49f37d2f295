"""Offline evaluation of the feed against baselines (`recs evaluate`): docs/quality.md."""
