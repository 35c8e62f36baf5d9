"""metrica.config: the site configuration names every mistake by its path; settings come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from metrica.config import ConfigError, LineConfig, Settings, load_site_config, parse_site_config

GOOD = """
stores:
  - name: Rue de Marseille
    timezone: Europe/Paris
    day_start_hour: 6
    occupancy_limit: 30
    cameras:
      - name: door
        source: rtsp://admin:pw@10.0.0.5/stream1
        fps: 7
        model: yolo11n
        lines: [{name: entrance, segment: [10, 300, 700, 310], inside: negative, footfall: true}]
        zones: [{name: till, polygon: [[0, 0], [100, 0], [100, 50]]}]
"""


def test_a_good_file_parses_with_defaults_filled_in() -> None:
    site = parse_site_config(GOOD)
    store = site.stores[0]
    assert (store.name, store.timezone, store.day_start_hour, store.occupancy_limit) == (
        "Rue de Marseille",
        "Europe/Paris",
        6,
        30,
    )
    camera = store.cameras[0]
    assert (camera.fps, camera.enabled, camera.loop, camera.model) == (7.0, True, False, "yolo11n")
    assert camera.lines == [LineConfig(name="entrance", segment=(10, 300, 700, 310), inside="negative")]
    assert camera.zones[0].polygon == [(0, 0), (100, 0), (100, 50)]
    bare = parse_site_config("stores: [{name: a, cameras: [{name: c, source: usb:0}]}]")
    assert bare.stores[0].timezone == "Africa/Tunis" and bare.stores[0].cameras[0].fps == 5.0
    assert parse_site_config('{"stores": []}', fmt="json").stores == []


CAM = "stores: [{name: a, cameras: [{name: c, source: x, %s}]}]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            CAM % "lines: [{name: l, segment: [1, 2, 3]}]",
            "stores[0].cameras[0].lines[0].segment: expected 4 numbers",
        ),
        (
            CAM % "lines: [{name: l, segment: [1, 1, 1, 1]}]",
            "stores[0].cameras[0].lines[0].segment: the two end points are the same",
        ),
        (
            CAM % "lines: [{name: l, segment: [-1, 1, 2, 2]}]",
            "stores[0].cameras[0].lines[0].segment[0]: expected `float` >= 0.0",
        ),
        (
            CAM % "lines: [{name: l, segment: [0, 0, 1, 1], inside: up}]",
            "stores[0].cameras[0].lines[0].inside: invalid enum value 'up'",
        ),
        (
            CAM % "lines: [{name: l, segment: [0, 0, 1, 1]}, {name: l, segment: [0, 0, 2, 2]}]",
            "stores[0].cameras[0].lines: the name 'l' is used twice",
        ),
        (
            CAM % "zones: [{name: z, polygon: [[1, 2], [3, 4]]}]",
            "stores[0].cameras[0].zones[0].polygon: expected `array` of length >= 3",
        ),
        (CAM % "fps: 0", "stores[0].cameras[0].fps: expected `float` > 0.0"),
        (CAM % "fps: 61", "stores[0].cameras[0].fps: expected `float` <= 60.0"),
        ("stores: [{name: a, colour: red}]", "stores[0]: unknown field `colour`"),
        ("stores: [{cameras: []}]", "stores[0].name: is required"),
        ("stores: [{name: a}, {name: a}]", "stores: the name 'a' is used twice"),
        (
            "stores: [{name: a, cameras: [{name: c, source: x}, {name: c, source: y}]}]",
            "stores[0].cameras: the name 'c' is used twice",
        ),
        (
            "stores: [{name: a, timezone: Mars/Olympus}]",
            "stores[0].timezone: unknown IANA time zone 'Mars/Olympus'",
        ),
        ("stores: [{name: a, day_start_hour: 24}]", "stores[0].day_start_hour: expected `int` <= 23"),
        ("stores: [{name: a, occupancy_limit: 0}]", "stores[0].occupancy_limit: expected `int` >= 1"),
        ('stores: [{name: "a\\nb"}]', "stores[0].name: expected `str` matching regex"),
        ("stores: [{name: ''}]", "stores[0].name: expected `str` of length >= 1"),
    ],
)
def test_a_mistake_is_named_by_its_path(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_site_config(text)
    assert str(caught.value).startswith(message)


def test_documents_that_do_not_parse() -> None:
    with pytest.raises(ConfigError, match=r"^not valid YAML: "):
        parse_site_config("stores: [")
    with pytest.raises(ConfigError, match=r"^not valid JSON: "):
        parse_site_config("{", fmt="json")
    with pytest.raises(ConfigError, match=r"^stores: expected `array`, got `int`"):
        parse_site_config('{"stores": 1}', fmt="json")


def test_load_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope.yaml: No such file or directory"):
        load_site_config(missing)
    bad = tmp_path / "site.yaml"
    bad.write_text("stores: [{name: a, day_start_hour: 25}]")
    with pytest.raises(ConfigError, match=r"site.yaml: stores\[0\].day_start_hour: expected `int` <= 23"):
        load_site_config(bad)
    good = tmp_path / "site.json"
    good.write_text('{"stores": [{"name": "a"}]}')
    assert load_site_config(good).stores[0].name == "a"


def test_settings_from_the_environment() -> None:
    settings = Settings.from_env({})
    assert (settings.database_url, settings.redis_url, settings.port, settings.log_format) == (
        None,
        None,
        8000,
        "auto",
    )
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u@db/metrica",
            "REDIS_URL": "",  # set but empty: unset
            "METRICA_PORT": "8080",
            "METRICA_STUCK_SECONDS": "2.5",
            "METRICA_LOG_FORMAT": "json",
            "METRICA_ADMIN_TOKEN": "t0k",
        }
    )
    assert settings.database_url == "postgresql://u@db/metrica" and settings.redis_url is None
    assert (settings.port, settings.stuck_seconds, settings.log_format, settings.admin_token) == (
        8080,
        2.5,
        "json",
        "t0k",
    )
    assert Settings.from_env({}, port=9000).port == 9000
    with pytest.raises(ConfigError, match=r"^settings: port: expected `int`, got `str`"):
        Settings.from_env({"METRICA_PORT": "eighty"})
    with pytest.raises(ConfigError, match=r"^settings: log_format: invalid enum value 'xml'"):
        Settings.from_env({"METRICA_LOG_FORMAT": "xml"})


def test_settings_paths_from_the_environment() -> None:
    settings = Settings.from_env(
        {"METRICA_DATA_DIR": "/srv/metrica", "METRICA_CONFIG": "/etc/metrica/site.yaml"}
    )
    assert settings.data_dir == Path("/srv/metrica")
    assert settings.site_config == Path("/etc/metrica/site.yaml")
    assert Settings.from_env({}, data_dir="/x").data_dir == Path("/x")


def test_settings_empty_values_are_unset_and_ports_are_checked() -> None:
    assert Settings.from_env({"METRICA_PORT": "", "DATABASE_URL": ""}).port == 8000
    assert Settings.from_env({"DATABASE_URL": ""}).database_url is None
    for bad in ("0", "65536"):
        with pytest.raises(ConfigError, match=r"^settings: port: expected `int`"):
            Settings.from_env({"METRICA_PORT": bad})


def test_empty_site_document_is_explained() -> None:
    with pytest.raises(ConfigError, match="empty"):
        parse_site_config(b"  \n")


def test_job_settings_from_the_environment() -> None:
    defaults = Settings.from_env({})
    assert (defaults.retention_days, defaults.webhook_urls, defaults.webhook_secret) == (400, [], None)
    settings = Settings.from_env(
        {
            "METRICA_RETENTION_DAYS": "30",
            "METRICA_ALERT_OFFLINE_MINUTES": "2.5",
            "METRICA_ALERT_LOW_TRAFFIC_RATIO": "0.25",
            "METRICA_WEBHOOK_URLS": "https://a.example/hook, https://b.example/x",
            "METRICA_WEBHOOK_SECRET": "s3cret",
        }
    )
    assert settings.retention_days == 30
    assert settings.alert_offline_minutes == 2.5
    assert settings.alert_low_traffic_ratio == 0.25
    assert settings.webhook_urls == ["https://a.example/hook", "https://b.example/x"]
    assert settings.webhook_secret == "s3cret"
    for bad in ({"METRICA_RETENTION_DAYS": "0"}, {"METRICA_ALERT_LOW_TRAFFIC_RATIO": "1.5"}):
        with pytest.raises(ConfigError, match="settings: "):
            Settings.from_env(bad)
