"""Loading alerts/routes.yaml, receivers.yaml and templates: the shipped files, and errors with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.cli.logsetup import mask
from sentinel.daemon.validate import validate_all
from sentinel.errors import ConfigErrors
from sentinel.route.loader import load_routing
from sentinel.route.tree import RoutingTree
from tests.fixtures.common import MakeConfig
from tests.fixtures.receiver import make_alert, write_alerts_dir

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "sentinel" / "shipped"
GOOD_ROUTES = "route:\n  receivers: [hook]\n"
GOOD_RECEIVERS = 'receivers:\n  - name: hook\n    urls: ["json://127.0.0.1:9/x"]\n'


def errors_for(tmp_path: Path, routes: str = GOOD_ROUTES, receivers: str = GOOD_RECEIVERS,
               templates: dict[str, str] | None = None) -> list[str]:
    d = write_alerts_dir(tmp_path / "alerts", routes, receivers, templates)
    with pytest.raises(ConfigErrors) as info:
        load_routing(d)
    return [str(e) for e in info.value.errors]


def test_shipped_routes_load_and_route_every_severity() -> None:
    routing = load_routing(SHIPPED / "alerts")
    tree: RoutingTree = routing.tree
    assert set(routing.receivers) >= {"oncall-pager", "security-chat", "security-email"}
    now = 1_773_237_600.0  # a Wednesday, 09:00 in Chicago
    for sev in ("critical", "high", "medium", "low", "info"):
        assert tree.match(make_alert(0, severity=sev), now), f"{sev} reaches someone"
    assert {m.receiver for m in tree.match(make_alert(0, severity="critical"), now)} == {"oncall-pager",
                                                                                         "security-chat"}
    assert all(m.digest for m in tree.match(make_alert(0, severity="low"), now))


def test_sentinel_check_validates_routes(make_config: MakeConfig) -> None:
    report = validate_all(make_config())
    assert any(line.startswith("alert routes:") for line in report.summary)
    assert not [e for e in report.errors if "alerts/" in str(e)], report.errors
    # The shipped receivers reference secrets this machine does not have: a warning, not an error.
    assert any("cannot send until fixed" in line for line in report.summary)


def test_unknown_receiver_names_file_and_line(tmp_path: Path) -> None:
    errs = errors_for(tmp_path, routes="route:\n  receivers: [hook]\n  routes:\n    - receivers: [nobody]\n")
    assert len(errs) == 1
    assert errs[0].endswith("routes.yaml:4: route.routes[0].receivers[0]: unknown receiver 'nobody'; known: hook")


def test_bad_values_are_located(tmp_path: Path) -> None:
    routes = ("defaults:\n  group_wait: 5 minutes\nroute:\n  receivers: [hook]\n  routes:\n"
              "    - match: {severity: high}\n      colour: red\n")
    errs = errors_for(tmp_path, routes=routes)
    assert any("routes.yaml:2: defaults.group_wait" in e and "not a duration" in e for e in errs), errs
    assert any("routes.yaml:7: route.routes[0].colour: unknown key" in e for e in errs), errs


def test_fallback_and_timezone_are_checked(tmp_path: Path) -> None:
    receivers = GOOD_RECEIVERS + "    fallback: nowhere\n"
    errs = errors_for(tmp_path, routes="timezone: Mars/Olympus\n" + GOOD_ROUTES, receivers=receivers)
    assert any("routes.yaml:1: timezone: unknown time zone" in e for e in errs), errs
    assert any("receivers.yaml:4: receivers[0].fallback: unknown fallback receiver 'nowhere'" in e for e in errs)


def test_inline_secrets_are_refused(tmp_path: Path) -> None:
    receivers = 'receivers:\n  - name: hook\n    urls: ["pagerduty://abcdef123456@secretkey999"]\n'
    errs = errors_for(tmp_path, receivers=receivers)
    assert len(errs) == 1 and "receivers.yaml:3" in errs[0] and "${ENV_VAR}" in errs[0]
    assert "secretkey999" not in errs[0], "the error names the place, not the secret"


def test_secret_references_resolve_from_env_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PD_ROUTING_KEY", "routingkey-0123456789")
    secret_file = tmp_path / "slack.url"
    secret_file.write_text("json://127.0.0.1:9/slack-secret-path-42\n")
    receivers = ('receivers:\n  - name: hook\n    urls: ["pagerduty://${PD_ROUTING_KEY}@${PD_ROUTING_KEY}"]\n'
                 f'  - name: chat\n    urls: ["file:{secret_file}"]\n')
    d = write_alerts_dir(tmp_path / "alerts", GOOD_ROUTES, receivers)
    routing = load_routing(d)
    assert routing.receivers["hook"].urls == ("pagerduty://routingkey-0123456789@routingkey-0123456789",)
    assert routing.receivers["chat"].urls == ("json://127.0.0.1:9/slack-secret-path-42",)
    assert "routingkey" not in repr(routing.receivers["hook"])
    assert mask("failed: pagerduty://routingkey-0123456789@x") == "failed: pagerduty://***@x"
    assert "slack-secret-path-42" not in mask("GET json://127.0.0.1:9/slack-secret-path-42")


def test_missing_secret_makes_the_receiver_fail_not_the_load(tmp_path: Path) -> None:
    receivers = 'receivers:\n  - name: hook\n    urls: ["json://127.0.0.1:9/${SENTINEL_TEST_UNSET_VAR}"]\n'
    routing = load_routing(write_alerts_dir(tmp_path / "alerts", GOOD_ROUTES, receivers))
    assert "SENTINEL_TEST_UNSET_VAR is not set" in (routing.receivers["hook"].problem or "")


def test_templates_may_name_only_known_fields(tmp_path: Path, make_config: MakeConfig) -> None:
    d = write_alerts_dir(tmp_path / "alerts", GOOD_ROUTES, GOOD_RECEIVERS,
                         {"default": "alert:\n  title: '{{ rule }} {{ phi.patient_name }}'\n",
                          "other": "alert:\n  body: '{{ event_original }}'\n"})
    report = validate_all(make_config(alerts_dir=str(d)))
    errs = [str(e) for e in report.errors if "templates" in str(e)]
    assert len(errs) == 2, errs
    assert any("default.yaml:2: alert.title: unknown field 'phi.patient_name'" in e for e in errs)
    assert any("other.yaml:2: alert.body: unknown field 'event_original'" in e for e in errs)


def test_partial_defaults_keep_the_builtin_timings(tmp_path: Path) -> None:
    d = write_alerts_dir(tmp_path / "alerts", "defaults: {group_wait: 0s}\n" + GOOD_ROUTES, GOOD_RECEIVERS)
    [m] = load_routing(d).tree.match(make_alert(0), 0.0)
    assert (m.group_wait, m.group_interval, m.repeat_interval) == (0.0, 300.0, 4 * 3600.0)
    assert m.group_by == ("rule", "user.name")
    errs = errors_for(tmp_path / "x", routes="defaults: {repeat_interval: 0s}\n" + GOOD_ROUTES)
    assert any("routes.yaml:1: defaults.repeat_interval" in e and "longer than 0s" in e for e in errs), errs
