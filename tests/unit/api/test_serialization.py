import orjson

from app.api.serialization import page_bytes
from app.results import RecommendationPage, RecommendedItem


def test_fast_path_equals_orjsons_own_dataclass_output() -> None:
    page = RecommendationPage(
        items=[
            RecommendedItem("item-1", 0.5, "personalized", "Bike", "bikes", 120.0, "berlin", "s1"),
            RecommendedItem("item-2", 0.25, "popular"),
        ],
        model_version="neighbours=nb-1,popular=pop-1",
        degraded=["catalog"],
        next_cursor="abc",
    )
    assert orjson.loads(page_bytes(page)) == orjson.loads(orjson.dumps(page))
