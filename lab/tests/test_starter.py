"""lab.starter: Day 48's starter is the reference with its milestone regions cut out."""

from __future__ import annotations

import textwrap

import pytest

from lab.starter import RegionError, milestones_of, regions, starter_text, write_starter

REFERENCE = textwrap.dedent('''\
    import json


    def relay(rows):
        """Publish the rows, oldest first."""
        # >>> milestone outbox-relay: publish the rows, oldest first
        for row in sorted(rows):
            print(json.dumps(row))
        return len(rows)
        # <<< milestone outbox-relay


    def reserve(amount):
        if amount < 0:
            raise ValueError(amount)
        # >>> milestone credit-ledger: reserve the amount in one conditional update
        return amount
        # <<< milestone credit-ledger
''')


def test_each_region_becomes_one_raise_naming_its_milestone_at_its_indentation():
    made = starter_text(REFERENCE)
    assert "# >>> milestone" not in made and "sorted(rows)" not in made and "return amount" not in made
    assert ('    """Publish the rows, oldest first."""\n'
            "    raise NotImplementedError('milestone outbox-relay is not built yet: publish the rows, oldest first')\n"
            ) in made, "the contract (docstring) stays; the body becomes the stub"
    assert "        raise ValueError(amount)\n" in made, "code outside the regions stays as it is"
    namespace = {}
    exec(compile(made, "starter", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="milestone credit-ledger is not built yet: reserve the amount"):
        namespace["reserve"](5)


def test_kept_milestones_keep_their_code_without_the_markers():
    made = starter_text(REFERENCE, keep={"credit-ledger"})
    assert "return amount" in made and "credit-ledger is not built" not in made
    assert "outbox-relay is not built yet" in made
    assert "milestone credit-ledger" not in made
    assert starter_text(REFERENCE, keep={"outbox-relay", "credit-ledger"}) == "".join(
        line for line in REFERENCE.splitlines(keepends=True) if "# >>>" not in line and "# <<<" not in line)


@pytest.mark.parametrize(("text", "says"), [
    ("def f():\n    # >>> milestone a: x\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    # <<< milestone a\n", "closes no open region"),
    ("def f():\n    # >>> milestone a: x\n    # >>> milestone b: y\n    # <<< milestone b\n    # <<< milestone a\n",
     "begins inside"),
    ("def f():\n    # >>> milestone a: x\n    return 1\n    # <<< milestone b\n", "closes no open region"),
    ("def f():\n    # >>> milestone A: x\n    return 1\n    # <<< milestone A\n", "must read"),
    ("# >>> milestone a: x\nimport os\n# <<< milestone a\nos.getcwd()\n", None),
    ("def f():\n    # >>> milestone a: x\n    if True:\n    # <<< milestone a\n        return 1\n", "not valid Python"),
])
def test_malformed_regions_are_refused_with_the_line(text, says):
    if says is None:  # a region at module level makes a valid file that raises on import: allowed, visible
        assert "raise NotImplementedError" in starter_text(text)
        return
    with pytest.raises(RegionError, match=says):
        starter_text(text, where="f.py")


def test_a_tree_keeps_everything_but_the_regions(tmp_path):
    reference = tmp_path / "reference"
    (reference / "pkg").mkdir(parents=True)
    (reference / "pkg" / "relay.py").write_text(REFERENCE)
    (reference / "pkg" / "plain.py").write_text("X = 1\n")
    (reference / ".run").mkdir()
    (reference / ".run" / "spans.jsonl").write_text("{}\n")
    starter = write_starter(reference, tmp_path / "starter")
    assert (starter / "pkg" / "plain.py").read_text() == "X = 1\n"
    assert "is not built yet" in (starter / "pkg" / "relay.py").read_text()
    assert not (starter / ".run").exists(), "a running system's state is no part of a starter"
    assert milestones_of(reference) == {"outbox-relay": [reference / "pkg" / "relay.py"],
                                        "credit-ledger": [reference / "pkg" / "relay.py"]}
    assert milestones_of(starter) == {}, "the starter has no regions left"
    assert [r.milestone for r in regions(REFERENCE)] == ["outbox-relay", "credit-ledger"]


def test_a_milestone_owns_the_tests_that_fail_without_it_alone(tmp_path):
    from lab.starter import milestone_tests

    reference = tmp_path / "Day-48-Mini-Project"
    reference.mkdir()
    (reference / "relay.py").write_text(REFERENCE)
    runs = []

    def run(tree, test_paths, root):
        text = (tree / "relay.py").read_text()
        runs.append(test_paths)
        failing = set()
        if "outbox-relay is not built" in text:
            failing |= {"tests/test_relay.py::test_publishes", "tests/test_flow.py::test_end_to_end"}
        if "credit-ledger is not built" in text:
            failing |= {"tests/test_ledger.py::test_reserves", "tests/test_flow.py::test_end_to_end"}
        return failing

    own, joint = milestone_tests(reference, ["tests"], tmp_path, run=run)
    assert own == {"outbox-relay": ["tests/test_relay.py::test_publishes"],
                   "credit-ledger": ["tests/test_ledger.py::test_reserves"]}
    assert joint == ["tests/test_flow.py::test_end_to_end"], "a test that needs two milestones belongs to neither"
    assert runs == [["tests"], ["tests"]], "one run per milestone, the others left in"
