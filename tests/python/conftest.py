# Fixtures for the PyGObject tests of arip; the helpers are in ariptest.py.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import pytest

import ariptest
from gi.repository import Arip


@pytest.fixture
def waiter():
    return ariptest.Waiter()


@pytest.fixture
def launcher():
    return ariptest.make_launcher()


@pytest.fixture
def max_processes():
    """Restores the global limit of the limiter after the test."""
    saved = Arip.get_max_processes()
    yield
    Arip.set_max_processes(saved)
