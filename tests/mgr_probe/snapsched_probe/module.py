"""The probe's mgr module: see the package docstring."""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable
from typing import Any, Final

from mgr_module import MgrModule, Option

from rbd_snapsched.module import OPTION_PAUSED, OPTION_SCHEDULE, UPSTREAM_MODULE
from rbd_snapsched.store import ModuleOption, OptionBackend

from .option_contract import check_option_backend, check_refused_write

RESULT_KEY: Final = "option_contract"
OWN_OPTION: Final = "probe_value"
# The options ModuleOption serves in production, each read and written from another module
# here: our schedule and pause records, and rbd_support's schedule (read, cleared by takeover).
OTHERS: Final = (
    ("rbd_snapsched", OPTION_SCHEDULE),
    ("rbd_snapsched", OPTION_PAUSED),
    (UPSTREAM_MODULE, OPTION_SCHEDULE),
)
UNKNOWN: Final = ("rbd_snapsched", "no_such_option")  # the mon refuses to store it
UPSTREAM_TRIES: Final = 3  # rbd_support's option: tries of its check (see serve)
UPSTREAM_PAUSE: Final = 10.0  # seconds between them


class Module(MgrModule):
    MODULE_OPTIONS = [  # noqa: RUF012 - the mgr reads these class attributes
        Option(name=OWN_OPTION, type="str", default="", desc="written by the contract only"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop = threading.Event()

    def serve(self) -> None:
        checks: list[tuple[tuple[str, str], Callable[[OptionBackend], None]]] = [
            ((self.module_name, OWN_OPTION), check_option_backend),
            *((where, check_option_backend) for where in OTHERS),
            (UNKNOWN, check_refused_write),
        ]
        outcome: dict[str, str] = {}
        for (owner, key), check in checks:
            # rbd_support writes its own option as it starts (on Tentacle, in a thread of its
            # own, once the mgr is active: the mgr starts this module at the same time), so a
            # write of ours there may be undone before it is read back. Its check is tried
            # again after a pause, at most twice; the others once.
            tries = UPSTREAM_TRIES if owner == UPSTREAM_MODULE else 1
            for attempt in range(1, tries + 1):
                try:
                    check(ModuleOption(self, owner, key))
                    outcome[f"{owner}/{key}"] = "kept"
                    break
                except Exception:
                    outcome[f"{owner}/{key}"] = traceback.format_exc()
                    self.log.warning(
                        "option contract %s/%s, try %d: %s",
                        owner,
                        key,
                        attempt,
                        outcome[f"{owner}/{key}"],
                    )
                    if self._stop.wait(UPSTREAM_PAUSE if attempt < tries else 0):
                        return
        self.set_store(RESULT_KEY, json.dumps(outcome))
        self.log.info("option contract: %s", outcome)
        self._stop.wait()

    def shutdown(self) -> None:
        self._stop.set()
