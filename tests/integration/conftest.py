"""conftest.py — pytest wiring for the integration suite: puts hmtest on the
path and offers a few shared fixtures (a test user, a private dovecot)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hmtest  # noqa: E402


@pytest.fixture
def user():
    """A fresh real system account."""
    return hmtest.make_user()


@pytest.fixture
def dovecot_for(request):
    """Factory: a started private dovecot serving the given users; stopped at teardown."""
    started = []

    def make(users, **kw):
        d = hmtest.Dovecot(None, users=users, **kw).start()
        started.append(d)
        return d
    yield make
    for d in started:
        d.stop()


def pytest_sessionstart(session):
    """Stop at once, with one line, when the daemons' users could not read
    what the harness staged for them (instead of minutes of 451s)."""
    why = hmtest.check_staging()
    if why:
        pytest.exit("hmtest: " + why, returncode=3)
