"""The acceptance suite grades any implementation of the Day 48 project through its gateway URL:

    python -m lab grade 48 --base-url http://127.0.0.1:8080
    ACCEPTANCE_BASE_URL=http://127.0.0.1:8080 python -m pytest Day-48-Mini-Project/acceptance

It knows nothing of the implementation: only CONTRACTS.md, spoken over HTTP. With a processes file
(``--processes FILE``, or ``ACCEPTANCE_PROCESSES``) the suite starts the system from that file
itself, runs the same tests, and then the faults of test_faults.py; without one, those are left out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import requests

ACCEPTANCE = Path(__file__).resolve().parent
DAY_48 = ACCEPTANCE.parent
for folder in (DAY_48, ACCEPTANCE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from gateway_client import GatewayClient  # noqa: E402 - needs the path above
from http_expectations import USERS, expect  # noqa: E402
from system_processes import (  # noqa: E402
    CONSUMER,
    RELAY,
    WEB,
    ProcessesFileError,
    Supervisor,
    SystemDidNotStart,
    answers,
    read_processes_file,
)

PROCESSES = "ACCEPTANCE_PROCESSES"  # the processes file, when the suite starts the system itself
LOGS = "ACCEPTANCE_LOGS"  # where the started processes' output goes
FAULTS = "test_faults.py"
READY_SECONDS = 120


# A fault that needs a kind of process the system does not have is left out, not failed: a system may
# publish without a relay process (say, from a thread of its web process) and is graded without it.
NEEDS = {"test_consumers_killed_while_they_work": CONSUMER, "test_relays_killed_while_they_publish": RELAY}


def pytest_collection_modifyitems(config, items):
    """Without a processes file the faults cannot be made: leave them out. With one, run them last."""
    faults = [item for item in items if item.path.name == FAULTS]
    rest = [item for item in items if item.path.name != FAULTS]
    left_out = faults
    if os.environ.get(PROCESSES):
        try:
            kinds = {p.kind for p in read_processes_file(Path(os.environ[PROCESSES])).processes}
        except ProcessesFileError:
            kinds = {WEB, CONSUMER, RELAY}  # the system fixture says what is wrong with the file
        left_out = [item for item in faults if NEEDS.get(item.originalname, WEB) not in kinds]
        rest += [item for item in faults if item not in left_out]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
    items[:] = rest


@pytest.fixture(scope="session")
def running_system(tmp_path_factory):
    """The system started from the processes file, or None when the suite grades one already running."""
    path = os.environ.get(PROCESSES)
    if not path:
        yield None
        return
    url = os.environ.get("ACCEPTANCE_BASE_URL", "").rstrip("/")
    try:
        spec = read_processes_file(Path(path))
    except ProcessesFileError as error:
        pytest.fail(str(error), pytrace=False)
    if answers(f"{url}/health/ready"):
        pytest.fail(f"something already answers at {url}: stop it (`make run`?) so that the grader can start the "
                    f"system from {path} itself", pytrace=False)
    supervisor = Supervisor(spec, Path(os.environ.get(LOGS) or tmp_path_factory.mktemp("system-logs")))
    supervisor.start_all()
    try:
        try:
            supervisor.wait_until_ready(f"{url}/health/ready", READY_SECONDS)
        except SystemDidNotStart as error:
            pytest.fail(f"the system in {path} did not start: {error}", pytrace=False)
        yield supervisor
    finally:
        supervisor.stop_all()


@pytest.fixture(scope="session")
def base_url(running_system) -> str:
    url = os.environ.get("ACCEPTANCE_BASE_URL", "").rstrip("/")
    if not url:
        pytest.fail("set ACCEPTANCE_BASE_URL (or run `python -m lab grade 48 --base-url URL`)", pytrace=False)
    try:
        requests.get(f"{url}/health/live", timeout=5)
    except requests.RequestException as error:
        pytest.fail(f"nothing answers at {url}: {error}. Start the system (`make run`) first.", pytrace=False)
    return url


def signed_up(base_url: str) -> GatewayClient:
    """A newly registered, logged-in user; a failure says which step the system refused."""
    client = GatewayClient(base_url)
    expect(client.register(), 201, contract=USERS, why="registering a new user for this test")
    expect(client.login(), 200, contract=USERS, why="logging in the user just registered")
    return client


@pytest.fixture
def client(base_url) -> GatewayClient:
    """A newly registered, logged-in user."""
    return signed_up(base_url)


@pytest.fixture
def new_client(base_url):
    """``new_client()``: another newly registered, logged-in user."""
    return lambda: signed_up(base_url)
