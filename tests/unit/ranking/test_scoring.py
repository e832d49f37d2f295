import random

import pytest

from app.domain import DEFAULT_EVENT_WEIGHTS, Interaction
from app.ranking.scoring import (
    blend,
    normalized,
    score_candidates,
    seed_weights,
    strongest,
    top_candidates,
)
from app.ranking.types import ScoredList

DAY = 86_400_000
NOW = 1_800_000_000_000


def weights(
    *interactions: Interaction, half_life_ms: int = DAY, position_decay: float = 1.0
) -> dict[str, float]:
    return seed_weights(
        interactions,
        event_weights={str(event): w for event, w in DEFAULT_EVENT_WEIGHTS.items()},
        half_life_ms=half_life_ms,
        position_decay=position_decay,
    )


def test_stronger_events_weigh_more_than_views() -> None:
    w = weights(
        Interaction("viewed", "view", NOW),
        Interaction("favorited", "favorite", NOW),
        Interaction("messaged", "message", NOW),
        Interaction("carted", "add_to_cart", NOW),
        Interaction("bought", "purchase", NOW),
    )
    assert w["viewed"] < w["favorited"] < w["messaged"] < w["carted"] < w["bought"]


def test_weight_halves_every_half_life_before_the_users_newest_interaction() -> None:
    w = weights(Interaction("fresh", "view", NOW), Interaction("old", "view", NOW - 2 * DAY))
    assert w["fresh"] == 1.0
    assert abs(w["old"] - 0.25) < 1e-12


def test_recency_ignores_the_clock_a_history_from_1997_ranks_as_one_from_today() -> None:
    def history(newest: int) -> tuple[Interaction, ...]:
        return (
            Interaction("a", "view", newest),
            Interaction("b", "favorite", newest - DAY // 2),
            Interaction("c", "view", newest - 9 * DAY),
        )

    movielens_1997 = 874_724_710_000
    assert weights(*history(movielens_1997)) == weights(*history(NOW))


def test_very_old_interactions_keep_a_floor_weight_instead_of_underflowing() -> None:
    w = weights(Interaction("new", "view", NOW), Interaction("ancient", "view", 0))
    assert 0.0 < w["ancient"] < 1e-18 < w["new"]


def test_position_decay_weighs_each_step_back_in_the_history() -> None:
    w = weights(
        Interaction("a", "view", NOW),
        Interaction("b", "view", NOW),
        Interaction("c", "view", NOW),
        position_decay=0.5,
    )
    assert w == {"a": 1.0, "b": 0.5, "c": 0.25}


def test_repeated_interactions_add_up_and_a_late_row_counts_as_fresh() -> None:
    w = weights(
        Interaction("a", "view", NOW),
        Interaction("a", "view", NOW),
        Interaction("skewed", "view", NOW + 5_000),
    )
    assert w["a"] == 0.5 ** (5_000 / DAY) * 2
    assert w["skewed"] == 1.0


def test_unknown_event_types_are_ignored() -> None:
    assert weights(Interaction("a", "shared", NOW)) == {}
    assert weights() == {}


def test_candidates_score_by_seed_weight_times_similarity() -> None:
    lists = {
        "seed1": ScoredList(("x", "y"), (0.5, 0.1)),
        "seed2": ScoredList(("y",), (1.0,)),
    }
    scores = score_candidates({"seed1": 2.0, "seed2": 1.0, "no-list": 5.0}, lists)
    assert scores == {"x": 1.0, "y": 0.2 + 1.0}


def test_top_candidates_drop_and_break_ties_by_id() -> None:
    ranked = top_candidates({"b": 1.0, "a": 1.0, "c": 3.0, "seen": 9.0}, drop={"seen"}, count=2)
    assert [(c.item_id, c.score) for c in ranked] == [("c", 3.0), ("a", 1.0)]
    assert all(c.source == "personalized" for c in ranked)


@pytest.mark.parametrize("count", [0, 1, 80, 1000])
def test_top_candidates_are_the_best_count_in_score_then_id_order(count: int) -> None:
    rng = random.Random(count)
    # Few distinct scores, so ties are common.
    scores = {f"item-{rng.randrange(5000)}": rng.randrange(20) / 4 for _ in range(450)}
    drop = set(rng.sample(sorted(scores), 40))
    expected = sorted((i for i in scores if i not in drop), key=lambda i: (-scores[i], i))
    ranked = top_candidates(scores, drop=drop, count=count)
    assert [c.item_id for c in ranked] == expected[:count]
    assert [c.score for c in ranked] == [scores[i] for i in expected[:count]]


def test_normalized_scales_best_to_one() -> None:
    assert normalized([2.0, 1.0, 0.0]) == [1.0, 0.5, 0.0]
    assert normalized([0.0, 0.0]) == [0.0, 0.0]
    assert normalized([]) == []


def test_only_the_heaviest_seeds_are_expanded() -> None:
    seeds = {"a": 1.0, "b": 0.5, "c": 0.5, "d": 0.1}
    assert strongest(seeds, 2) == {"a": 1.0, "b": 0.5}  # ties by id
    assert strongest(seeds, 10) == seeds


def test_blend_scales_each_source_to_its_best_and_mixes_them() -> None:
    neighbours = {"a": 4.0, "b": 2.0}
    vectors = {"b": 0.5, "c": 1.0, "far": -0.2}
    blended = blend(neighbours, vectors, 0.25)
    # (1 - w) n / max(n) + w v / max(v), times max(n) / (1 - w): the same order.
    expected = {"a": 0.75, "b": 0.375 + 0.125, "c": 0.25}
    scale = 4.0 / 0.75
    assert blended == {item: pytest.approx(score * scale) for item, score in expected.items()}
    assert blend(neighbours, vectors, 0.0) == neighbours
    assert blend(neighbours, vectors, 1.0) == {"b": 0.5, "c": 1.0}
    assert blend({}, vectors, 0.5) == {"b": 0.5, "c": 1.0}
    assert blend(neighbours, {}, 0.5) == neighbours
    assert blend(neighbours, {"far": -0.5}, 0.5) == neighbours
