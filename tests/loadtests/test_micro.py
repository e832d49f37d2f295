"""The micro-benchmarks' rows for the report, from pytest-benchmark's JSON (`micro.summarize`)."""

from __future__ import annotations

from loadtests.bench.micro import summarize


def case(params: dict[str, object], data: list[float], **extra: object) -> dict[str, object]:
    mean = sum(data) / len(data)
    stats = {"rounds": len(data), "min": min(data), "median": 0.5, "mean": mean, "data": data}
    return {"params": params, "stats": stats, "extra_info": extra}


def test_a_round_of_calls_in_flight_is_reported_per_call() -> None:
    data = [0.001 * n for n in range(1, 151)]  # 1 to 150 ms a round
    (row,) = summarize(
        {"benchmarks": [case({"in_flight": 16}, data, per_round=16, cpu_s=[0.016] * 5, found=[32])]}
    )
    assert row["case"] == "in_flight 16"
    assert row["p99_s"] == data[148]  # nearest rank: the 149th of 150 (148.5 rounded up)
    assert row["cpu_s"] == 0.001  # 16 ms of CPU a round of 16 calls
    assert row["found"] == 2.0
    assert round(row["calls_per_s"]) == round(16 / (sum(data) / 150))


def test_a_case_without_extra_info_has_no_cpu_or_rows() -> None:
    (row,) = summarize({"benchmarks": [case({"way": "product"}, [2e-6, 1e-6])]})
    assert (row["per_round"], row["min_s"], row["p99_s"]) == (1, 1e-6, 2e-6)
    assert row["cpu_s"] is None and row["found"] is None
