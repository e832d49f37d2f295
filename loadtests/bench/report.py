"""docs/benchmark.md from a run's results (`BenchRun.results()`, saved as results.json): the
verdicts on the targets here, the page in report.md.j2."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jinja2

ENDPOINT_TITLES = {
    "floor": "framework floor (`GET /bench/floor`)",
    "feed": "personalized feed (`GET /v1/users/{id}/recommendations?limit=20`)",
    "similar": "similar items (`GET /v1/items/{id}/similar?limit=12`)",
    "popular": "popular (`GET /v1/popular?limit=20`, 40 % category, 30 % region)",
    "events": "events (`POST /v1/events`, one event)",
}


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "> last bucket"
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def sec_ms(value: float | None) -> str:
    """A duration in seconds (a /metrics histogram's), shown in ms."""
    return ms(None if value is None else value * 1000)


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f} %"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


def div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def us(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    value = seconds * 1e6
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


# --- targets -----------------------------------------------------------------------------------


def verdicts(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(PASS / MISS / NOT MEASURED, the target, what was measured), one per target."""
    out: list[tuple[str, str, str]] = []

    def judge(name: str, passed: bool | None, measured: str) -> None:
        if passed is None:
            out.append(("NOT MEASURED", name, "not measured in this run"))
        else:
            out.append(("PASS" if passed else "MISS", name, measured))

    product = r["product"]
    for endpoint, limit in (("feed", 10), ("similar", 5)):
        name = f"{endpoint}: p99 ≤ {limit} ms at 70 % of its saturation"
        fixed = product.get(endpoint, {}).get("fixed", {}).get("70%")
        if fixed is None:
            judge(name, None, "")
            continue
        p99 = fixed["p99_ms"]
        knee = rate(product[endpoint]["saturation"])
        measured = f"p99 {ms(p99)} ms at {rate(fixed['rate'])} req/s (70 % of {knee})"
        judge(name, p99 is not None and p99 <= limit, measured + _caveats(fixed))

    naive = next((a["runs"].get("feed") for a in r["ablations"] if a["name"] == "naive"), None)
    name_x = "feed: the product ≥ 4× the naive baseline's saturation throughput"
    name_p = "feed: the product's p99 ≤ 1/4 of the naive baseline's, at the baseline's 70 % load"
    if not naive or not {"product", "naive"} <= naive.keys():
        judge(name_x, None, "")
        judge(name_p, None, "")
    else:
        product_runs, baseline = naive["product"], naive["naive"]
        ours, theirs = product_runs["saturation"], baseline["saturation"]
        speedup = div(ours, theirs)
        judge(
            name_x,
            speedup is not None and speedup >= 4,
            f"{rate(ours)} vs {rate(theirs)} req/s: {ratio(speedup)}",
        )
        ours_fixed = product_runs["fixed"].get("common")
        theirs_fixed = baseline["fixed"].get("common")
        if ours_fixed is None or theirs_fixed is None:
            judge(name_p, None, "")
        else:
            share = div(ours_fixed["p99_ms"], theirs_fixed["p99_ms"])
            judge(
                name_p,
                share is not None and share <= 0.25,
                f"at {rate(ours_fixed['rate'])} req/s: p99 {ms(ours_fixed['p99_ms'])} vs "
                f"{ms(theirs_fixed['p99_ms'])} ms = {ratio(share)}"
                + _caveats(ours_fixed)
                + _caveats(theirs_fixed, "baseline"),
            )

    name_f = "similar (warm cache): ≥ 50 % of the framework floor's throughput"
    floor, similar = product.get("floor"), product.get("similar")
    if floor is None or similar is None:
        judge(name_f, None, "")
    else:
        share = div(similar["saturation"], floor["saturation"])
        at_knee = similar["ramp"][similar["knee_step"]]
        hit = at_knee["metrics"]["cache_hit_ratio"].get("neighbours")
        judge(
            name_f,
            share is not None and share >= 0.5,
            f"{rate(similar['saturation'])} vs {rate(floor['saturation'])} req/s = "
            f"{pct(share, 0)} (neighbour cache hit ratio at the knee {pct(hit)})",
        )
    return out


def _caveats(run: dict[str, Any], who: str = "") -> str:
    notes = []
    if run["rate"] and run["served"] < 0.97 * run["rate"]:
        notes.append(f"served {rate(run['served'])} of {rate(run['rate'])} req/s")
    if run["failed"]:
        notes.append(f"{run['failed']} HTTP failures")
    if run["degraded_share"]:
        notes.append(f"dependency failures on ≤ {pct(run['degraded_share'])} of answers")
    return f" ({who + ': ' if who else ''}{'; '.join(notes)})" if notes else ""


# --- the page ----------------------------------------------------------------------------------


def render(results: dict[str, Any]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=False,  # Markdown, not HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(ms=ms, sec_ms=sec_ms, rate=rate, pct=pct, ratio=ratio, us=us)
    env.globals.update(div=div, minus=minus, titles=ENDPOINT_TITLES)
    return env.get_template("report.md.j2").render(r=results, targets=verdicts(results))


def write(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(results))
