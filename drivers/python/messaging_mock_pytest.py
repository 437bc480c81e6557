"""pytest fixtures that start the messaging-mock binary (see messaging_mock.start_mock).

Load it as a plugin: installed with `pip install`, pytest finds it by itself (entry point
`pytest11`); from a checkout, put `pytest_plugins = ["messaging_mock_pytest"]` in conftest.py
(with drivers/python on sys.path) or run `pytest -p messaging_mock_pytest`.

    def test_hello(messaging_mock):
        requests.post(f"{messaging_mock.base_url}/api/v1/access-token", ...)
        assert messaging_mock.control.sessions() == [...]

    @pytest.mark.messaging_mock(scenario="handoff/server-managed", seed=7)
    def test_handoff(messaging_mock): ...

    def test_two(messaging_mock_factory):
        a = messaging_mock_factory(scenario="basic-conversation")
        b = messaging_mock_factory(args=["--profile", "2026-05"])

    @pytest.mark.messaging_mock(tls=True)       # https:// and wss://; trust messaging_mock.ca_file
    def test_over_tls(messaging_mock): ...

Each mock is stopped when its test ends, whether it passed, failed or raised. Only this module
imports pytest; messaging_mock works without it.
"""

from __future__ import annotations

import pytest

from messaging_mock import MockHandle, start_mock

__all__ = ["messaging_mock", "messaging_mock_factory"]

MARKER = "messaging_mock"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): options for the messaging_mock fixture's start_mock() "
        "(scenario=, seed=, config=, tls=, args=, env=, ...)",
    )


def _marker_options(request) -> dict:
    marker = request.node.get_closest_marker(MARKER)
    return dict(marker.kwargs) if marker is not None else {}


@pytest.fixture
def messaging_mock(request):
    """A running mock (a messaging_mock.MockHandle), started with the options of the test's
    `@pytest.mark.messaging_mock(...)` marker, stopped when the test ends."""
    with start_mock(**_marker_options(request)) as mock:
        yield mock


@pytest.fixture
def messaging_mock_factory():
    """start_mock as a function: call it with options, as many times as needed; every mock it
    started is stopped when the test ends."""
    started: list[MockHandle] = []

    def factory(**options) -> MockHandle:
        mock = start_mock(**options)
        started.append(mock)
        return mock

    try:
        yield factory
    finally:
        for mock in reversed(started):
            mock.stop()
