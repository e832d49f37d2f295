import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from app.domain import MIN_TS_MS, EventType, is_valid_id, is_valid_segment
from app.embeddings import read_embeddings
from app.offline.cooccurrence import CooccurrenceConfig, build_neighbours_file
from app.offline.demo import DEFAULT_NOW_MS, DemoManifest, generate_demo
from app.offline.formats import read_catalog, read_interactions, read_neighbours, read_popular
from app.offline.popular import PopularConfig, build_popular_file

REPO = Path(__file__).resolve().parents[3]
DATA_FILES = (
    "catalog.jsonl",
    "interactions.csv.gz",
    "neighbours.csv.gz",
    "popular.csv",
    "embeddings.npz",
)
SMALL = {"items": 400, "users": 80}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    return generate_demo(tmp_path_factory.mktemp("demo"), **SMALL)


def manifest_without_timings(directory: Path) -> dict[str, object]:
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["timings_s"]
    return manifest  # type: ignore[no-any-return]


def test_same_seed_gives_identical_bytes(demo: DemoManifest, tmp_path: Path) -> None:
    again = generate_demo(tmp_path, **SMALL)
    for name in DATA_FILES:
        assert (again.out_dir / name).read_bytes() == (demo.out_dir / name).read_bytes(), name
    assert manifest_without_timings(tmp_path) == manifest_without_timings(demo.out_dir)


def test_another_seed_gives_another_dataset(demo: DemoManifest, tmp_path: Path) -> None:
    other = generate_demo(tmp_path, seed=7, **SMALL)
    for name in DATA_FILES:
        assert (other.out_dir / name).read_bytes() != (demo.out_dir / name).read_bytes(), name


def test_identical_across_processes_with_different_hash_seeds(
    demo: DemoManifest, tmp_path: Path
) -> None:
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        command = [sys.executable, "-m", "app.offline.demo", "--out", str(out)]
        command += ["--items", str(SMALL["items"]), "--users", str(SMALL["users"])]
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            command, env=env, cwd=REPO, capture_output=True, text=True, check=True
        )
        assert "interactions.csv.gz" in done.stdout
        for name in DATA_FILES:
            assert (out / name).read_bytes() == (demo.out_dir / name).read_bytes(), name


def test_files_obey_the_formats_and_agree_with_each_other(demo: DemoManifest) -> None:
    out = demo.out_dir
    catalog = {item.item_id: item for item in read_catalog(out / "catalog.jsonl")}
    assert list(catalog) == [f"item-{n}" for n in range(1, SMALL["items"] + 1)]
    assert all(
        item.title and item.category and item.region and item.seller_id and item.price
        for item in catalog.values()
    )
    assert all(item.seller_id and is_valid_id(item.seller_id) for item in catalog.values())

    interactions = list(read_interactions(out / "interactions.csv.gz"))
    assert {item for _, item, _, _ in interactions} <= catalog.keys()
    assert {user for user, _, _, _ in interactions} == {
        f"user-{n}" for n in range(1, SMALL["users"] + 1)
    }
    times = [ts for _, _, _, ts in interactions]
    assert times == sorted(times)
    assert MIN_TS_MS < DEFAULT_NOW_MS - 60 * 86_400_000 <= times[0] < times[-1] < DEFAULT_NOW_MS

    neighbours = list(read_neighbours(out / "neighbours.csv.gz"))
    assert neighbours
    assert {item for item, _, _ in neighbours} | {o for _, o, _ in neighbours} <= catalog.keys()

    popular = list(read_popular(out / "popular.csv"))
    assert all(is_valid_segment(segment) for segment, _, _ in popular)
    assert all(catalog[item].active for _, item, _ in popular)
    assert Counter(segment for segment, _, _ in popular)["global"] == min(
        200, len({item for _, item, _, _ in interactions if catalog[item].active})
    )

    embeddings = read_embeddings(out / "embeddings.npz")
    assert set(embeddings.item_ids) == {item for _, item, _, _ in interactions}
    assert embeddings.dim == 64

    assert demo.files == {
        "catalog.jsonl": {"rows": len(catalog), "bytes": (out / "catalog.jsonl").stat().st_size},
        "interactions.csv.gz": {
            "rows": len(interactions),
            "bytes": (out / "interactions.csv.gz").stat().st_size,
        },
        "neighbours.csv.gz": {
            "rows": len(neighbours),
            "bytes": (out / "neighbours.csv.gz").stat().st_size,
        },
        "popular.csv": {"rows": len(popular), "bytes": (out / "popular.csv").stat().st_size},
        "embeddings.npz": {
            "rows": len(embeddings),
            "bytes": (out / "embeddings.npz").stat().st_size,
        },
    }
    assert json.loads((out / "manifest.json").read_text())["files"] == demo.files


def test_built_files_equal_a_rebuild_from_the_written_interactions(
    demo: DemoManifest, tmp_path: Path
) -> None:
    out = demo.out_dir
    build_neighbours_file(
        out / "interactions.csv.gz", tmp_path / "neighbours.csv.gz", CooccurrenceConfig(k=50)
    )
    build_popular_file(
        out / "interactions.csv.gz",
        out / "catalog.jsonl",
        tmp_path / "popular.csv",
        PopularConfig(top_n=200),
    )
    for name in ("neighbours.csv.gz", "popular.csv"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_shape_of_the_marketplace(tmp_path: Path) -> None:
    manifest = generate_demo(tmp_path, items=3000, users=600)
    catalog = list(read_catalog(tmp_path / "catalog.jsonl"))
    interactions = list(read_interactions(tmp_path / "interactions.csv.gz"))
    events = Counter(event for _, _, event, _ in interactions)
    share = {event: events[event] / len(interactions) for event in EventType}
    assert 0.76 < share[EventType.VIEW] < 0.84
    assert share[EventType.FAVORITE] > share[EventType.MESSAGE] > share[EventType.PURCHASE] > 0
    per_user = Counter(user for user, _, _, _ in interactions)
    assert 30 < len(interactions) / 600 < 50
    assert sum(count <= 3 for count in per_user.values()) >= 10  # cold users
    categories = Counter(item.category for item in catalog)
    assert len(categories) == 20
    assert len({item.region for item in catalog}) == 12
    assert 0.01 < sum(not item.active for item in catalog) / len(catalog) < 0.06
    sellers = Counter(item.seller_id for item in catalog)
    assert max(sellers.values()) >= 10 * (len(catalog) / len(sellers))  # a few big sellers
    views = Counter(item for _, item, _, _ in interactions)
    top = sum(count for _, count in views.most_common(len(catalog) // 100))
    assert top > 0.1 * len(interactions)  # the top 1 % of items draw > 10 % of events
    assert manifest.counts["inactive_items"] == sum(not item.active for item in catalog)


def test_rejects_empty_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="items >= 2"):
        generate_demo(tmp_path, items=1, users=5)


def test_the_catalog_uses_exactly_the_advertised_categories_and_regions(tmp_path: Path) -> None:
    """CATEGORY_NAMES and REGION_NAMES are what the load tests draw filters from."""
    from app.offline.demo import CATEGORY_NAMES, REGION_NAMES
    from app.offline.formats import read_catalog

    generate_demo(tmp_path, items=2000, users=50, seed=3)
    catalog = list(read_catalog(tmp_path / "catalog.jsonl"))
    assert {item.category for item in catalog} == set(CATEGORY_NAMES)
    assert {item.region for item in catalog} == set(REGION_NAMES)
