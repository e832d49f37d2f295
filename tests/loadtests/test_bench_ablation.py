"""The order of an ablation's measurements (`Bench.ablation`), with the servers and vegeta
replaced by a log of what the bench asked for: what a variant's numbers mean depends on what
ran on it just before."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from loadtests.bench import plan
from loadtests.bench.plan import Ablation
from loadtests.bench.runner import Bench, BenchRun
from loadtests.bench.variants import PRODUCT, Pieces, Variant

SLOW = Variant("slow", Pieces(dynamodb="boto3"))
FAST = Variant("fast", Pieces(dynamodb="signed-json"))
KNEES = {PRODUCT.name: 200.0, SLOW.name: 100.0, FAST.name: 300.0}


class RecordingBench(Bench):
    """A bench whose servers, warm-ups and attacks only record themselves."""

    def __init__(self, tmp_path: Path) -> None:
        run = BenchRun(
            command="test",
            started=dt.datetime.now(dt.UTC),
            durations=plan.QUICK,
            machine={},
            load_start=(0.0, 0.0, 0.0),
            work_dir=tmp_path,
        )
        super().__init__(
            run,
            env={},
            dataset=None,  # type: ignore[arg-type]  # the fake servers need no targets
            vegeta_bin=tmp_path / "vegeta",
            verbose=False,
        )
        self.log: list[tuple[str, ...]] = []

    @contextmanager
    def server(self, variant: Variant) -> Iterator[Any]:
        self.log.append(("start", variant.name))
        yield SimpleNamespace(name=variant.name, started_s=1.0), {"feed": Path("feed.jsonl")}

    def warm_up(self, server: Any, variant: Variant, targets: Path, what: str = "warm-up") -> None:
        self.log.append((what, variant.name))

    def saturate(self, server: Any, variant: Variant, endpoint: str, targets: Path) -> Any:
        self.log.append(("saturate", variant.name))
        return SimpleNamespace(throughput=KNEES[variant.name], repeats=[])

    def measure(
        self, server: Any, variant: Variant, endpoint: str, attack: Any, kind: str, label: str
    ) -> Any:
        self.log.append((kind, variant.name, f"{attack.rate:.0f}"))
        return SimpleNamespace()


def test_each_variant_is_warmed_again_right_before_its_run_at_the_common_load(
    tmp_path: Path,
) -> None:
    bench = RecordingBench(tmp_path)
    bench.ablation(Ablation("dynamodb", "t", "w", (PRODUCT, SLOW, FAST)))

    fixed = [i for i, entry in enumerate(bench.log) if entry[0] == "fixed"]
    assert [bench.log[i][1] for i in fixed] == ["product", "slow", "fast"]
    for i in fixed:
        assert bench.log[i - 1] == ("warm-up again", bench.log[i][1]), bench.log
    # 70 % of the smallest knee, for every variant.
    assert {bench.log[i][2] for i in fixed} == {"70"}
    # Each variant's first warm-up comes before its ramp.
    for variant in ("product", "slow", "fast"):
        assert bench.log.index(("warm-up", variant)) < bench.log.index(("saturate", variant))
