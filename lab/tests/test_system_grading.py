"""`lab grade 48 --base-url URL [--processes FILE]`: weights from the suite's data file, the table that
shows them, the processes file a builder writes, and the parts of the fault grading that need no server."""

from __future__ import annotations

import os
import socket
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from lab import cli, reports
from lab.acceptance import read_weights, weigh, weight_key
from lab.course import ROOT
from lab.runner import TaskResult, TestResult, collect, read_report

SUITE = ROOT / "Day-48-Mini-Project" / "acceptance"
sys.path.insert(0, str(SUITE))

import broker_connections  # noqa: E402 - from the suite's folder, above
import http_expectations  # noqa: E402
from system_processes import (  # noqa: E402
    CONSUMER,
    RELAY,
    WEB,
    ProcessesFileError,
    local_ports_to,
    read_processes_file,
    session_members,
)


def test_every_acceptance_test_has_a_weight_and_every_weight_a_test():
    collected = collect(SUITE, ROOT, {"ACCEPTANCE_PROCESSES": "collect-the-faults-too.toml"})
    keys = {weight_key(nodeid) for nodeid in collected}
    weights = read_weights(SUITE)
    assert keys - set(weights) == set(), f"acceptance/weights.toml has no weight for {sorted(keys - set(weights))}"
    assert set(weights) - keys == set(), f"acceptance/weights.toml weighs tests that do not exist: {sorted(set(weights) - keys)}"
    assert all(w > 0 for w in weights.values())
    http = sum(w for k, w in weights.items() if not k.startswith("test_faults.py"))
    assert http == 100, f"the HTTP tests weigh {http} together; the file says they weigh 100"


def test_security_and_money_weigh_more_than_conveniences():
    weights = read_weights(SUITE)
    heavy = ["test_orders.py::test_another_users_order_does_not_exist_for_you",
             "test_edge.py::test_forged_and_unsigned_tokens_are_refused",
             "test_orders.py::test_a_client_cannot_set_prices",
             "test_orders.py::test_an_order_beyond_the_credit_limit_is_rejected",
             "test_orders.py::test_a_retry_with_the_same_idempotency_key_returns_the_first_order"]
    light = ["test_edge.py::test_every_response_carries_a_request_id", "test_orders.py::test_the_catalogue_is_public",
             "test_edge.py::test_unknown_routes_are_404_problems"]
    assert min(weights[k] for k in heavy) >= 4 * max(weights[k] for k in light)


def test_without_a_processes_file_the_faults_are_not_collected():
    collected = collect(SUITE, ROOT, {"ACCEPTANCE_PROCESSES": ""})
    assert collected and not [n for n in collected if "test_faults.py" in n]


def test_a_fault_that_needs_a_kind_of_process_the_system_lacks_is_left_out(tmp_path):
    path = tmp_path / "system.toml"
    path.write_text("[[process]]\nname = 'shop'\ncommand = 'serve'\n\n[[process]]\nname = 'shop-worker'\n"
                    "command = 'work'\n")
    faults = {n.rsplit("::", 1)[-1] for n in collect(SUITE, ROOT, {"ACCEPTANCE_PROCESSES": str(path)})
              if "test_faults.py" in n}
    assert faults == {"test_consumers_killed_while_they_work", "test_web_processes_crash_and_restart",
                      "test_the_broker_drops_the_systems_connections"}, "no relay process: no relay fault"


def result(outcomes: dict[str, str], weights: dict[str, float]) -> TaskResult:
    tests = [TestResult(f"Day-48-Mini-Project/acceptance/{nodeid}", outcome, "why it failed" * (outcome != "passed"))
             for nodeid, outcome in outcomes.items()]
    weigh(tests, weights)
    return TaskResult("acceptance", 48, "the system", 100, tests)


def test_the_score_shares_the_points_by_weight_and_cases_share_their_tests_weight():
    graded = result({"test_a.py::test_heavy": "failed", "test_a.py::test_light": "passed",
                     "test_b.py::test_cases[1]": "passed", "test_b.py::test_cases[2]": "failed"},
                    {"test_a.py::test_heavy": 6, "test_a.py::test_light": 2, "test_b.py::test_cases": 2})
    assert [t.weight for t in graded.tests] == [6, 2, 1, 1]
    assert graded.score == 30.0, "3 of 10 weight passed"
    assert (graded.passed, graded.total) == (2, 4)


def test_equal_weights_score_as_before():
    graded = result({"t.py::test_1": "passed", "t.py::test_2": "failed", "t.py::test_3": "passed"}, {})
    assert graded.score == round(100 * 2 / 3, 2) and not graded.weighted


def test_the_table_shows_each_tests_weight_and_points():
    graded = result({"test_a.py::test_heavy": "failed", "test_a.py::test_light": "passed"},
                    {"test_a.py::test_heavy": 6, "test_a.py::test_light": 2})
    table = reports.table([graded])
    heavy = next(line for line in table.splitlines() if "test_heavy" in line)
    light = next(line for line in table.splitlines() if "test_light" in line)
    assert "✗" in heavy and "6" in heavy and "0.00/75.00" in heavy, table
    assert "✓" in light and "25.00/25.00" in light, table
    assert "why it failed" in table and "25/100 points" in table
    assert "(weight 6)" in reports.gradescope([graded])


def test_a_weight_in_a_test_process_report_is_ignored(tmp_path):
    report = tmp_path / "report.jsonl"
    report.write_text('{"nodeid": "t.py::test_x", "outcome": "passed", "message": "", "weight": 1000}\n')
    assert read_report(report).results[0].weight == 1.0, "a test process must not weigh its own tests"


# ---- the processes file ----

def test_a_toml_processes_file(tmp_path):
    (tmp_path / "Procfile").write_text("gateway: serve gateway\nshop-relay: relay\n")
    path = tmp_path / "system.toml"
    path.write_text(textwrap.dedent("""
        procfile = "Procfile"
        [broker]
        url = "amqp://guest:guest@broker.test:5673/%2F"
        connection_name = "my-shop"
        dead_letter_queues = ["orders.dead-letter"]
        [env]
        DATABASE_URL = "sqlite:///shop.db"
        PORT = 8080
        [[process]]
        name = "mailer"
        command = "python -m mailer"
        kind = "consumer"
    """))
    spec = read_processes_file(path, environ={})
    assert [(p.name, p.kind) for p in spec.processes] == [("gateway", WEB), ("shop-relay", RELAY), ("mailer", CONSUMER)]
    assert spec.broker_address == ("broker.test", 5673) and spec.connection_name == "my-shop"
    assert spec.env == {"DATABASE_URL": "sqlite:///shop.db", "PORT": "8080"} and spec.cwd == tmp_path
    assert spec.dead_letter_queues == ("orders.dead-letter",)


def test_the_example_processes_file_reads_as_it_says():
    spec = read_processes_file(SUITE / "processes.example.toml", environ={})
    assert {p.name: p.kind for p in spec.processes} == {"gateway": WEB, "orders": WEB, "orders-relay": RELAY,
                                                         "orders-events": CONSUMER}
    assert spec.connection_name == "my-shop" and len(spec.dead_letter_queues) == 2 and spec.cwd == SUITE


def test_a_procfile_with_a_dotenv(tmp_path):
    (tmp_path / "Procfile").write_text("# my shop\nweb: gunicorn app\norders-worker: python worker.py\n"
                                       "outbox-relay: python relay.py\n")
    (tmp_path / ".env").write_text("AMQP_URL='amqp://u:p@localhost:5679/%2F'\nexport DEBUG=1\n")
    spec = read_processes_file(tmp_path / "Procfile", environ={})
    assert {p.name: p.kind for p in spec.processes} == {"web": WEB, "orders-worker": CONSUMER, "outbox-relay": RELAY}
    assert spec.broker_address == ("localhost", 5679) and spec.env["DEBUG"] == "1"


@pytest.mark.parametrize(("text", "says"), [
    ("[[process]]\nname = 'relay'\ncommand = 'x'\n", "no web process"),
    ("[[process]]\nname = 'web'\ncommand = 'x'\nkind = 'cron'\n", "unknown kinds web (cron)"),
    ("[[process]]\nname = 'web'\n", "has no command"),
    ("procfile = 'nowhere'\n", "there is no"),
    ("[[process]\n", "not valid TOML"),
])
def test_a_processes_file_that_cannot_be_used_says_why(tmp_path, text, says):
    path = tmp_path / "system.toml"
    path.write_text(text)
    with pytest.raises(ProcessesFileError, match=says.replace("(", r"\(").replace(")", r"\)")):
        read_processes_file(path, environ={})


def test_a_malformed_procfile_line_is_named(tmp_path):
    (tmp_path / "Procfile").write_text("web: gunicorn app\njust a command\n")
    with pytest.raises(ProcessesFileError, match="line 2"):
        read_processes_file(tmp_path / "Procfile", environ={})


def test_a_processes_own_broker_ports_are_read_from_proc():
    if not Path("/proc/self/net/tcp").exists():
        pytest.skip("no /proc here: the grader matches connections by name instead")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client, server.accept()[0]:
            assert os.getpid() in session_members(os.getsid(0))
            assert local_ports_to([os.getpid()], port) == {client.getsockname()[1]}
            assert local_ports_to([os.getpid()], port + 1 if port < 65535 else port - 1) == set()


def test_only_the_systems_connections_are_chosen():
    ours = broker_connections.Connection("<1>", 50001, "shop-7 consumer of shop-7-orders")
    theirs = broker_connections.Connection("<2>", 50002, "another test's consumer")
    unnamed = broker_connections.Connection("<3>", 50003, "")
    listing = [ours, theirs, unnamed]
    assert broker_connections.of_system(listing, "shop-7", set()) == [ours]
    assert broker_connections.of_system(listing, "", {50003}) == [unnamed]
    assert broker_connections.of_system(listing, "", set()) == []
    properties = '[{"product","pika"},{"connection_name","orders-service consumer of q"},{"platform","Python"}]'
    assert broker_connections.connection_name(properties) == "orders-service consumer of q"
    assert broker_connections.connection_name('[{"product","pika"}]') == ""


# ---- the messages ----

def test_a_failed_expectation_says_what_was_sent_expected_received_and_where(serve):
    from flask import Flask

    app = Flask(__name__)
    app.post("/api/orders/<order_id>/cancel")(lambda order_id: ({"id": order_id, "status": "CANCELLED"}, 200))
    url = serve(app)
    response = requests.post(f"{url}/api/orders/abc/cancel", json={"why": "x"}, timeout=5)
    with pytest.raises(AssertionError) as failure:
        http_expectations.expect(response, 404, problem=True, contract=http_expectations.CONVENTIONS,
                                 why="another user's order answers 404")
    message = str(failure.value)
    first = message.splitlines()[0]
    assert first.startswith("POST /api/orders/abc/cancel: expected 404") and "got 200" in first
    for part in ('{"why": "x"}', "another user's order answers 404", '"status":"CANCELLED"', "application/json",
                 "CONTRACTS.md#conventions"):
        assert part in message, message


def test_long_bodies_are_trimmed():
    assert http_expectations.trimmed("x" * 1000).endswith("... (1000 characters)")
    assert len(http_expectations.trimmed("x" * 1000)) < 350


def test_every_section_a_message_names_is_an_anchor_of_the_contracts():
    contracts = (ROOT / http_expectations.CONTRACTS).read_text(encoding="utf-8")
    for section in http_expectations.SECTIONS:
        assert f"{{ #{section} }}" in contracts, f"CONTRACTS.md has no heading with the anchor #{section}"


def test_processes_go_with_a_base_url(capsys):
    assert cli.main(["grade", "48", "--processes", "system.toml"]) == 2
    assert "--base-url" in capsys.readouterr().err
    assert cli.main(["grade", "48", "--base-url", "http://127.0.0.1:9", "--processes", "no-such-file.toml"]) == 2
    assert "no file" in capsys.readouterr().err
