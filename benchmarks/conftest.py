from tests.harness import harness  # noqa: F401 - the local AWS fixture
