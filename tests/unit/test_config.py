import pytest
from pydantic import ValidationError

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
        ({"RECS_ANN_IVF_MIN_VECTORS": "999"}, "RECS_ANN_IVF_MIN_VECTORS must be at least 1000"),
        # Stricter than pydantic's own parsing, which would take these.
        ({"RECS_GC_FREEZE": "t"}, "RECS_GC_FREEZE: expected a boolean, got 't'"),
        ({"RECS_PORT": "80.0"}, "RECS_PORT: invalid literal for int"),
        ({"RECS_HEADER_TIMEOUT_S": "nan"}, "RECS_HEADER_TIMEOUT_S must be positive"),
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


def test_accepts_the_spellings_it_documents() -> None:
    settings = Settings.from_env(
        {
            "RECS_PORT": " 9000 ",
            "RECS_GC_FREEZE": "Off",
            "RECS_ACCESS_LOG": " yes ",
            "RECS_API_KEYS": " k1 , ,k2,",
            "RECS_BACKEND": " embedded ",
            "RECS_GC_THRESHOLDS": "1, 2 ,3",
        }
    )
    assert settings.port == 9000 and settings.gc_freeze is False and settings.access_log
    assert settings.api_keys == ["k1", "k2"] and settings.backend == "embedded"
    assert settings.gc_thresholds == [1, 2, 3]


def test_a_given_mapping_is_read_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECS_PORT", "not a port")
    monkeypatch.setenv("RECS_SCYLLA_HOSTS", "h")
    settings = Settings.from_env({"RECS_MAX_LIMIT": "50"})
    assert settings.port == 8000 and settings.scylla_hosts == [] and settings.max_limit == 50


def test_the_process_environment_is_read_like_a_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "RECS_SCYLLA_HOSTS": "10.0.0.1, 10.0.0.2",
        "RECS_EVENT_WEIGHTS": "view=1,favorite=2,message=3,add_to_cart=4,purchase=10",
        "RECS_GC_FREEZE": "off",
        "RECS_PORT": " 9000 ",
        "recs_max_limit": "5",  # names are exact: this one is not a setting
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings == Settings.from_env(env)
    assert settings.scylla_hosts == ["10.0.0.1", "10.0.0.2"] and settings.max_limit == 200
    monkeypatch.setenv("RECS_GC_THRESHOLDS", "[1,2,3]")  # lists are comma-separated, not JSON
    with pytest.raises(SettingsError, match=r"RECS_GC_THRESHOLDS: invalid literal .* '\[1'"):
        Settings.from_env()


def test_settings_are_immutable_and_copied_with_changes() -> None:
    settings = Settings.from_env({})
    with pytest.raises(ValidationError, match="frozen"):
        settings.port = 1  # type: ignore[misc]
    changed = settings.model_copy(update={"port": 1})
    assert changed.port == 1 and settings.port == 8000


def test_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_env({"RECS_CURSOR_SECRET": "c-value", "RECS_API_KEYS": "k-value"})
    assert "c-value" not in repr(settings) and "k-value" not in repr(settings)


def test_docs_configuration_lists_every_setting_as_generated() -> None:
    from pathlib import Path

    from app.config import markdown_reference

    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert page == markdown_reference(), "regenerate: python -m app.config > docs/configuration.md"
    for name in Settings.model_fields:
        assert f"`RECS_{name.upper()}`" in page
