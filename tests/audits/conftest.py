"""Fixtures shared by the audits tests: a plan stepped down into monitoring."""

from tests.audits.test_monitoring import frozen, run, stepped_down  # noqa: F401
