import pytest

from app.config import Settings, SettingsError
from app.domain import DEFAULT_EVENT_WEIGHTS


def test_defaults_are_valid_and_embedded() -> None:
    settings = Settings.from_env({})
    assert not settings.use_remote
    assert settings.gc_thresholds == [7000, 20, 20]
    assert settings.event_weights == DEFAULT_EVENT_WEIGHTS


def test_reads_typed_values_from_recs_variables() -> None:
    settings = Settings.from_env(
        {
            "RECS_SCYLLA_HOSTS": "10.0.0.1, 10.0.0.2",
            "RECS_CATALOG_URL": "http://catalog",
            "RECS_PORT": "9000",
            "RECS_GC_FREEZE": "false",
            "RECS_SIMILAR_REGION_WEIGHT": "0.5",
            "RECS_EVENT_WEIGHTS": "view=1,favorite=2,message=3,add_to_cart=4,purchase=10",
            "RECS_BACKEND": "auto",
        }
    )
    assert settings.use_remote
    assert settings.scylla_hosts == ["10.0.0.1", "10.0.0.2"]
    assert settings.port == 9000 and settings.gc_freeze is False
    assert settings.similar_region_weight == 0.5
    assert settings.event_weights["purchase"] == 10.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECS_PORT": "eighty"}, "RECS_PORT"),
        ({"RECS_WORKERS": "0"}, "RECS_WORKERS"),
        ({"RECS_BACKEND": "cloud"}, "RECS_BACKEND"),
        ({"RECS_GC_FREEZE": "maybe"}, "RECS_GC_FREEZE"),
        ({"RECS_EVENT_WEIGHTS": "view=1"}, "RECS_EVENT_WEIGHTS"),
        ({"RECS_GC_THRESHOLDS": "1,2"}, "RECS_GC_THRESHOLDS"),
        ({"RECS_SCYLLA_IN_CHUNK": "500"}, "RECS_SCYLLA_IN_CHUNK"),
        ({"RECS_MAX_LIMIT": "0"}, "RECS_MAX_LIMIT"),
        ({"RECS_CATALOG_CACHE_REFRESH_S": "0"}, "RECS_CATALOG_CACHE_REFRESH_S"),
        ({"RECS_CATALOG_CACHE_TTL_S": "-1"}, "RECS_CATALOG_CACHE_TTL_S"),
    ],
)
def test_bad_settings_refuse_to_start_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECS_BACKEND": "remote"}, "RECS_SCYLLA_HOSTS"),
        ({"RECS_SCYLLA_HOSTS": "h"}, "RECS_CATALOG_URL"),
        ({"RECS_CURSOR_SECRET": ""}, "RECS_CURSOR_SECRET is required to serve"),
    ],
)
def test_serving_needs_what_the_cli_does_not(env: dict[str, str], message: str) -> None:
    # The CLI accepts these (versions list needs no catalog, no cursor is ever signed).
    settings = Settings.from_env({"RECS_CURSOR_SECRET": "s", **env})
    with pytest.raises(SettingsError, match=message):
        settings.check_serving()


def test_public_dict_masks_secrets() -> None:
    settings = Settings.from_env(
        {"RECS_API_KEYS": "k1,k2", "RECS_SCYLLA_PASSWORD": "pw", "RECS_CURSOR_SECRET": "c"}
    )
    shown = settings.public_dict()
    assert shown["api_keys"] == "***" and shown["scylla_password"] == "***"
    assert shown["cursor_secret"] == "***"
    assert shown["port"] == 8000


def test_docs_configuration_lists_every_setting_as_generated() -> None:
    from pathlib import Path

    from app.config import markdown_reference, setting_fields

    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert page == markdown_reference(), "regenerate: python -m app.config > docs/configuration.md"
    for field in setting_fields():
        assert f"`RECS_{field.name.upper()}`" in page
