"""The benchmark of the service: open-loop load (vegeta) against the local stack.

    python -m loadtests.bench [--quick] [--only NAME,...] [--out docs/benchmark.md]

Modules, in the order a run uses them:

- `runner`       the command line and the run: sections, the knee, report
- `plan`         sections, ablations and durations
- `variants`     the server variants: which pieces, which settings
- `server`       the bench server: `python -m app` plus /bench/floor, pieces swapped
- `pieces`       the naive pieces the ablations put back (app/ has no switch for them)
- `workload`     vegeta target files, Zipf-skewed ids
- `vegeta`       attacks and their results
- `prom`         /metrics before and after a run
- `processes`    the servers as child processes; CPU time from /proc
- `micro`        micro-benchmarks outside the server (pytest-benchmark)
- `profile`      py-spy under load, reduced to top costs
- `machine`      the machine and the code measured
- `report`       docs/benchmark.md from results.json (template: report.md.j2)
"""
