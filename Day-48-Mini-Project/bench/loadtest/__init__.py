"""The parts of the Day 48 load test that ``full_flow.py`` puts together; none imports Locust, so
that they can be imported (and tested) in any process."""
