"""Repository-wide pytest set-up: the docstring examples of ``mmjafar/`` run as doctests (see pytest.ini)."""
import logging

import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def _quiet_logger_in_doctests(request):
    """Docstring examples show results, not log lines: mmengine's logger (which prints to stdout, e.g. the
    random-weights warning of a backbone built without a checkpoint) is held at ERROR while an example runs."""
    if not isinstance(request.node, DoctestItem):
        yield
        return
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
