"""The Prometheus alert rules of Day 47 pass `promtool check rules` and their own `promtool test rules`.

promtool ships with Prometheus (Debian/Ubuntu: `apt-get install prometheus`). Where it is absent
these tests are skipped, unless LAB_REQUIRE_SERVICES names "promtool": then they fail, as in CI.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from lab.course import ROOT
from lab.services import required

RULES_DIR = ROOT / "Day-47-Observability" / "examples" / "prometheus"


def find_promtool() -> str:
    path = shutil.which("promtool")
    if path:
        return path
    message = (
        "promtool is not installed: apt-get install prometheus (it ships promtool), or put promtool on PATH"
    )
    if "promtool" in required():
        pytest.fail(f"{message} (LAB_REQUIRE_SERVICES names promtool, so this is a failure)", pytrace=False)
    pytest.skip(message)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([find_promtool(), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60)


def test_alert_rules_pass_promtool_check():
    result = run("check", "rules", "alerts.yml")
    assert result.returncode == 0, (
        f"`promtool check rules alerts.yml` (in {RULES_DIR}) failed:\n{result.stdout}{result.stderr}"
    )


def test_alert_rules_pass_their_unit_tests():
    result = run("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, (
        f"`promtool test rules alerts_test.yml` (in {RULES_DIR}) failed:\n{result.stdout}{result.stderr}"
    )


def test_every_alert_is_tested_firing_and_not_firing():
    rules = yaml.safe_load((RULES_DIR / "alerts.yml").read_text(encoding="utf-8"))
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    cases = yaml.safe_load((RULES_DIR / "alerts_test.yml").read_text(encoding="utf-8"))
    checks = [check for test in cases["tests"] for check in test.get("alert_rule_test", [])]
    for alert in sorted(alerts):
        outcomes = {bool(check.get("exp_alerts")) for check in checks if check["alertname"] == alert}
        assert outcomes == {True, False}, (
            f"alerts_test.yml should test {alert} both firing (exp_alerts listed) and not firing "
            f"(exp_alerts: []); it tests {sorted('firing' if o else 'not firing' for o in outcomes) or 'neither'}"
        )
