"""A hard timeout for every serve test: asyncio deadlines inside each test end it cleanly; this
watchdog (faulthandler) dumps every thread's stack and exits if a test still hangs, so nothing
here can hang CI."""

import faulthandler

import pytest

HARD_TIMEOUT_S = 150


@pytest.fixture(autouse=True)
def hard_timeout():
    faulthandler.dump_traceback_later(HARD_TIMEOUT_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()
