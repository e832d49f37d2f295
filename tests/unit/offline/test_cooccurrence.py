import math
import random
from pathlib import Path

import pytest

from app.domain import EventType
from app.offline.cooccurrence import (
    CooccurrenceBuilder,
    CooccurrenceConfig,
    build_neighbours,
    build_neighbours_file,
)
from app.offline.formats import InteractionRow, read_neighbours, write_interactions
from app.offline.topk import top_k_neighbours
from app.offline.weighting import DAY_MS, Weighting

BASE = 1_780_000_000_000
MINUTE = 60_000
V, F, M, C, P = (
    EventType.VIEW,
    EventType.FAVORITE,
    EventType.MESSAGE,
    EventType.ADD_TO_CART,
    EventType.PURCHASE,
)


def ev(user: str, item: str, minute: float, event: EventType = V) -> InteractionRow:
    return user, item, event, BASE + int(minute * MINUTE)


def neighbours_of(result: dict[str, list[tuple[str, float]]], item: str) -> dict[str, float]:
    return dict(result.get(item, []))


def test_items_consumed_together_in_a_session_become_neighbours() -> None:
    result = build_neighbours([ev("u", "a", 0), ev("u", "b", 2), ev("v", "c", 0)])
    assert list(neighbours_of(result, "a")) == ["b"]
    assert list(neighbours_of(result, "b")) == ["a"]
    assert "c" not in result


def test_with_a_session_gap_events_across_it_do_not_pair() -> None:
    rows = [ev("u", "a", 0), ev("u", "b", 31), ev("u", "c", 50)]
    result = build_neighbours(rows, CooccurrenceConfig(session_gap_ms=30 * MINUTE))
    assert "a" not in result
    assert list(neighbours_of(result, "b")) == ["c"]
    # Without one (the default) the window spans visits.
    assert set(neighbours_of(build_neighbours(rows), "a")) == {"b", "c"}


def test_a_session_chains_through_consecutive_events() -> None:
    rows = [ev("u", "a", 0), ev("u", "b", 25), ev("u", "c", 50)]
    result = build_neighbours(rows, CooccurrenceConfig(window=3, session_gap_ms=30 * MINUTE))
    assert set(neighbours_of(result, "a")) == {"b", "c"}


def test_other_users_do_not_pair_and_may_interleave() -> None:
    rows = [ev("u", "a", 0), ev("v", "x", 1), ev("u", "b", 2), ev("v", "y", 3)]
    result = build_neighbours(rows)
    assert set(result) == {"a", "b", "x", "y"}
    assert list(neighbours_of(result, "a")) == ["b"]
    assert list(neighbours_of(result, "x")) == ["y"]


def test_small_disorder_within_a_user_is_tolerated() -> None:
    result = build_neighbours([ev("u", "b", 5), ev("u", "a", 4.5)])
    assert list(neighbours_of(result, "a")) == ["b"]


def test_window_decides_how_far_back_a_new_event_pairs() -> None:
    rows = [ev("u", item, minute) for minute, item in enumerate("abcd")]
    consecutive = build_neighbours(rows, CooccurrenceConfig(window=1))
    assert set(neighbours_of(consecutive, "b")) == {"a", "c"}
    assert set(neighbours_of(consecutive, "a")) == {"b"}
    windowed = build_neighbours(rows, CooccurrenceConfig(window=3, window_decay=0.5, shrinkage=0))
    a = neighbours_of(windowed, "a")
    assert list(a) == ["b", "c", "d"]  # weights 1, 0.5, 0.25
    assert a["b"] == pytest.approx(2 * a["c"])
    assert a["c"] == pytest.approx(2 * a["d"])


def test_same_item_events_do_not_pair_with_themselves() -> None:
    result = build_neighbours([ev("u", "a", 0), ev("u", "a", 1, F), ev("u", "a", 2, P)])
    assert result == {}


def test_stronger_events_weigh_more() -> None:
    # a was bought next to b but only viewed next to c.
    rows = [ev("u", "a", 0, P), ev("u", "b", 1), ev("v", "a", 0), ev("v", "c", 1)]
    a = neighbours_of(build_neighbours(rows), "a")
    assert list(a) == ["b", "c"]
    assert a["b"] > 2 * a["c"]


def test_event_weights_are_configurable() -> None:
    rows = [ev("u", "a", 0, P), ev("u", "b", 1), ev("v", "a", 0), ev("v", "c", 1)]
    flat = Weighting(event_weights=dict.fromkeys(EventType, 1.0))
    a = neighbours_of(build_neighbours(rows, CooccurrenceConfig(weighting=flat)), "a")
    assert a["b"] == pytest.approx(a["c"])


def test_with_recency_a_users_older_events_weigh_less_than_their_newer_ones() -> None:
    later = 30 * DAY_MS / MINUTE
    rows = [ev("u", "a", 0), ev("u", "b", 1)]
    rows += [ev("u", "z", later), ev("u", "c", later + 1), ev("u", "a", later + 2)]
    decaying = CooccurrenceConfig(window=1, weighting=Weighting(half_life_ms=DAY_MS))
    a = neighbours_of(build_neighbours(rows, decaying), "a")
    assert list(a) == ["c", "b"]
    assert a["b"] < a["c"] / 1000
    # Off by default: every event counts fully.
    a = neighbours_of(build_neighbours(rows, CooccurrenceConfig(window=1)), "a")
    assert a["b"] == pytest.approx(a["c"])


def test_recency_is_measured_from_each_users_own_newest_event() -> None:
    # One user active 20 years ago, one today: with recency on, neither is discounted.
    twenty_years = 20 * 365 * DAY_MS / MINUTE
    rows = [ev("old", "a", -twenty_years), ev("old", "b", -twenty_years + 1)]
    rows += [ev("new", "a", 0), ev("new", "c", 1)]
    decaying = CooccurrenceConfig(weighting=Weighting(half_life_ms=DAY_MS))
    a = neighbours_of(build_neighbours(rows, decaying), "a")
    assert a["b"] == pytest.approx(a["c"])


def test_alpha_turns_the_cosine_into_the_conditional_probability() -> None:
    # a met b once; b is popular (seen 10 times).
    rows = [ev("u", "a", 0), ev("u", "b", 1)] + [ev(f"v{i}", "b", 0) for i in range(9)]
    cosine = CooccurrenceConfig(alpha=0.5, shrinkage=0)
    assert neighbours_of(build_neighbours(rows, cosine), "a") == {"b": pytest.approx(10**-0.5)}
    leaning = neighbours_of(build_neighbours(rows, CooccurrenceConfig(shrinkage=0)), "a")
    assert leaning == {"b": pytest.approx(10**-0.2)}  # the default alpha, 0.8
    conditional = CooccurrenceConfig(alpha=1.0, shrinkage=0)
    assert neighbours_of(build_neighbours(rows, conditional), "a") == {"b": pytest.approx(1.0)}
    assert neighbours_of(build_neighbours(rows, conditional), "b") == {"a": pytest.approx(0.1)}


def test_rare_pairs_are_shrunk_towards_zero() -> None:
    rows = [ev("u", "a", 0), ev("u", "b", 1)]
    assert neighbours_of(build_neighbours(rows, CooccurrenceConfig(shrinkage=0)), "a") == {
        "b": pytest.approx(1.0)
    }
    assert neighbours_of(build_neighbours(rows), "a") == {"b": pytest.approx(0.5, abs=1e-4)}


def random_log(
    seed: int, users: int = 40, items: int = 30, rows: int = 2000
) -> list[InteractionRow]:
    rng = random.Random(seed)
    clock = {f"u{i}": BASE for i in range(users)}
    log = []
    for _ in range(rows):
        user = f"u{rng.randrange(users)}"
        clock[user] += rng.choice([MINUTE, 5 * MINUTE, 2 * DAY_MS])
        item = f"i{min(rng.randrange(items), rng.randrange(items))}"
        log.append((user, item, rng.choice(list(EventType)), clock[user]))
    return log


def test_cosine_scores_are_symmetric() -> None:
    config = CooccurrenceConfig(k=100, max_candidates=100, alpha=0.5)
    result = build_neighbours(random_log(1), config)
    pairs = 0
    for a, neighbours in result.items():
        for b, score in neighbours:
            assert neighbours_of(result, b)[a] == pytest.approx(score, rel=1e-12)
            pairs += 1
    assert pairs > 100


def test_result_is_sorted_best_first_and_capped_at_k() -> None:
    result = build_neighbours(random_log(2), CooccurrenceConfig(k=5, max_candidates=20))
    assert any(len(neighbours) == 5 for neighbours in result.values())
    for neighbours in result.values():
        assert len(neighbours) <= 5
        assert neighbours == sorted(neighbours, key=lambda entry: (-entry[1], entry[0]))
        assert all(score > 0 for _, score in neighbours)


def test_candidates_per_item_never_exceed_the_cap() -> None:
    config = CooccurrenceConfig(k=3, max_candidates=5)
    builder = CooccurrenceBuilder(config)
    for i in range(200):
        builder.add([ev(f"u{i}", "hub", i * 60), ev(f"u{i}", f"x{i}", i * 60 + 1)])
        assert builder.largest_candidate_count() <= 2 * config.max_candidates
    assert builder.stats.cuts > 0
    assert builder.items == 201
    result = builder.result()
    assert len(result["hub"]) == 3


def test_a_repeated_partner_survives_the_cuts_among_many_one_off_partners() -> None:
    no_decay = Weighting(half_life_ms=None)
    config = CooccurrenceConfig(k=3, max_candidates=5, weighting=no_decay)
    rows = []
    for i in range(300):
        partner = "twin" if i % 10 < 2 else f"x{i}"
        rows += [ev(f"u{i}", "hub", i * 60), ev(f"u{i}", partner, i * 60 + 1)]
    builder = CooccurrenceBuilder(config)
    builder.add(rows)
    assert builder.stats.cuts > 10
    hub = builder.result()["hub"]
    assert hub[0][0] == "twin"
    assert hub[0][1] == pytest.approx(60 / (300**0.8 * 60**0.2 + 1))  # the default alpha, 0.8


def test_interleaving_users_does_not_change_the_result() -> None:
    log = random_log(3)
    by_user = sorted(log, key=lambda row: row[0])  # stable: each user's order kept
    a = build_neighbours(log)
    b = build_neighbours(by_user)
    assert a.keys() == b.keys()
    for item, neighbours in a.items():
        assert [other for other, _ in b[item]] == [other for other, _ in neighbours]
        assert [score for _, score in b[item]] == pytest.approx([s for _, s in neighbours])


def test_adding_in_parts_equals_adding_at_once() -> None:
    log = random_log(4)
    builder = CooccurrenceBuilder()
    builder.add(log[:700])
    builder.add(log[700:])
    assert builder.result() == build_neighbours(log)


def test_a_log_spanning_thousands_of_half_lives_stays_finite_and_keeps_its_pairs() -> None:
    config = CooccurrenceConfig(weighting=Weighting(half_life_ms=MINUTE))
    epoch = -BASE / MINUTE  # ts_ms 0: 1970
    rows = [ev("u", "a", epoch), ev("u", "b", epoch + 1)]
    rows += [ev("u", "c", 0), ev("u", "d", 1)]
    result = build_neighbours(rows, config)
    assert next(iter(neighbours_of(result, "c"))) == "d"
    assert set(neighbours_of(result, "a")) >= {"b"}  # floored, never zero
    assert all(math.isfinite(score) and score > 0 for lst in result.values() for _, score in lst)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be >= 1"),
        ({"window": 0}, "window must be >= 1"),
        ({"window_decay": 0}, "window_decay"),
        ({"k": 50, "max_candidates": 10}, "max_candidates"),
        ({"shrinkage": -1}, "shrinkage"),
        ({"alpha": 1.5}, "alpha"),
        ({"session_gap_ms": -1}, "session_gap_ms"),
    ],
)
def test_config_is_validated(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CooccurrenceConfig(**kwargs)  # type: ignore[arg-type]


def test_file_build_round_trips_through_the_neighbours_reader(tmp_path: Path) -> None:
    log = random_log(5)
    write_interactions(tmp_path / "interactions.csv.gz", log)
    build = build_neighbours_file(tmp_path / "interactions.csv.gz", tmp_path / "neighbours.csv.gz")
    assert build.read.rows_read == len(log)
    expected = build_neighbours(log)
    assert build.items == len(expected)
    assert build.rows_written == sum(map(len, expected.values()))
    again = top_k_neighbours(read_neighbours(tmp_path / "neighbours.csv.gz"), 50)
    assert {item: [o for o, _ in lst] for item, lst in again.items()} == {
        item: [o for o, _ in lst] for item, lst in expected.items()
    }
