"""Prometheus alert rules with unit tests: prometheus/alerts.yml and prometheus/alerts_test.yml.

What it shows:

- three alerts on symptoms of the services of this day (their metrics are those of
  ``02_prometheus_metrics.py``): **HighErrorRate**, the share of 5xx answers over 5 minutes as a
  ratio of two ``rate()`` sums; **HighLatencyP99**, ``histogram_quantile(0.99, ...)`` over the
  latency buckets; **ServiceDown**, ``up == 0``, which Prometheus itself writes for a target it
  cannot scrape. Each has a ``for:`` duration (pending before firing), a ``severity`` label for
  routing in Alertmanager (``page`` wakes someone, ``ticket`` waits for working hours) and a
  ``summary`` and ``runbook_url`` annotation;
- the house rules checked here in Python: every alert has ``for:``, a known severity, a summary
  and a runbook;
- ``promtool check rules`` (syntax and PromQL) and ``promtool test rules`` (made-up series in,
  expected alerts out, at chosen times, both firing and not firing), then the same tests against
  a copy of the rules whose threshold someone "relaxed", to see them fail.

Run it (under 1 second):

    python Day-47-Observability/examples/06_alert_rules.py

promtool comes with Prometheus (Debian/Ubuntu: ``apt-get install prometheus``). Without it the
script checks the house rules only and says what it skipped. ``tests/test_alert_rules.py`` runs
the same two promtool commands under pytest.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

RULES_DIR = Path(__file__).resolve().parent / "prometheus"
SEVERITIES = {"page", "ticket"}


# --8<-- [start:house_rules]
def house_rule_problems(rules_file: Path) -> tuple[list[str], list[dict]]:
    """What every alert of ours must have, beyond what promtool checks; and the alerts."""
    document = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    alerts = [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]
    problems = []
    for alert in alerts:
        name = alert["alert"]
        if "for" not in alert:
            problems.append(f"{name}: no `for:`, so a single bad scrape fires it")
        if alert.get("labels", {}).get("severity") not in SEVERITIES:
            problems.append(f"{name}: labels.severity must be one of {sorted(SEVERITIES)}")
        for annotation in ("summary", "runbook_url"):
            if not alert.get("annotations", {}).get(annotation):
                problems.append(f"{name}: annotations.{annotation} is missing")
    return problems, alerts
    # --8<-- [end:house_rules]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=30)


def main() -> int:
    problems, alerts = house_rule_problems(RULES_DIR / "alerts.yml")
    for alert in alerts:
        print(f"{alert['alert']} (for {alert['for']}, severity {alert['labels']['severity']}):")
        print("    " + alert["expr"].strip().replace("\n", "\n    "))
    if not shutil.which("promtool"):
        print(
            "promtool not found (Debian/Ubuntu: apt-get install prometheus): "
            "skipped `promtool check rules` and `promtool test rules`"
        )
    else:
        for command in (("check", "rules", "alerts.yml"), ("test", "rules", "alerts_test.yml")):
            result = promtool(*command, cwd=RULES_DIR)
            print(f"$ promtool {' '.join(command)}\n{(result.stdout + result.stderr).rstrip()}")
            if result.returncode != 0:
                problems.append(f"promtool {' '.join(command)} failed")
        with tempfile.TemporaryDirectory(prefix="day47-rules-") as scratch:
            relaxed = (RULES_DIR / "alerts.yml").read_text(encoding="utf-8").replace("> 0.05", "> 0.20")
            (Path(scratch) / "alerts.yml").write_text(relaxed, encoding="utf-8")
            shutil.copy(RULES_DIR / "alerts_test.yml", scratch)
            result = promtool("test", "rules", "alerts_test.yml", cwd=Path(scratch))
            caught = result.returncode != 0 and "HighErrorRate" in result.stdout + result.stderr
            print(
                f"With the error-rate threshold relaxed to 20%, the tests {'fail' if caught else 'still pass'}:"
            )
            lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
            print("    " + "\n    ".join(lines[:5]))
            if not caught:
                problems.append("the unit tests did not notice the relaxed HighErrorRate threshold")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(f"{len(alerts)} alert rules, each with for:, a severity, a summary and a runbook_url")
    return 0


if __name__ == "__main__":
    sys.exit(main())
