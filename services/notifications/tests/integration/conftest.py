import pytest


@pytest.fixture(autouse=True)
def _clean_redis(arq_cleanup):  # noqa: ANN001, ANN202
    """Every integration test runs on both stacks and leaves no arq keys behind."""
    return None
