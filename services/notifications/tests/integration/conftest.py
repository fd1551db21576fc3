import pytest


@pytest.fixture(autouse=True)
def _clean_redis(arq_cleanup):
    """Every integration test runs on both stacks and leaves no arq keys behind."""
    return None
