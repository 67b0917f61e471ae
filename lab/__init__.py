"""The course harness: grading, hints, verification and test support for the daily labs.

Tests import the module under test through :func:`load_task`, never by path, so the same tests
grade the learner's stub (``LAB_TARGET=tasks``), the reference (``LAB_TARGET=solutions``) or an
untrusted submission copied aside by the instructor's grader (``LAB_SUBMISSION=DIR``).
"""

from lab.target import load_task

__all__ = ["load_task"]
