"""Offline data tooling: pure file processing, run before (or beside) the service.

Nothing here talks to a server; everything reads and writes files, one pass, bounded
memory. Import the modules directly (this package imports nothing itself):

- `formats`: streaming readers and writers for the neighbours, popular and
  interactions CSVs and the catalog JSONL (gzip or not), with `FormatError` and
  `ReadStats`.
- `topk`: the best K entries per key from an unordered scored stream.
- `weighting`: event-type weights and recency decay, shared by the two builders.
- `cooccurrence`: item-to-item neighbours from an interaction log.
- `popular`: popular lists per segment from an interaction log and the catalog.
- `demo`: a seeded, deterministic demo marketplace (also `python -m app.offline.demo`).

Pure logic (`topk`, `weighting`, the builders in `cooccurrence` and `popular`) takes
iterables of rows; only `formats` and the `*_file` / `write_*` helpers touch the disk.
The builders are CPU-bound for seconds: call them from a worker thread or process,
never on the event loop.
"""
