from typing import Any

import pytest

class LoadScopeScheduling:
    """xdist's scheduler that sends each work unit (a "scope") to one worker."""

    def __init__(self, config: pytest.Config, log: Any | None = None) -> None: ...
    def _split_scope(self, nodeid: str) -> str: ...
