"""The ceph-mgr adapter: declares commands and options, maps errors; the handler does the work."""

from __future__ import annotations

import errno
import json
import threading
from collections.abc import Callable
from typing import Any, Final

import rados
import rbd
from mgr_module import HandleCommandResult, MgrModule, NotifyType, Option

from .clock import SystemClock
from .cluster import (
    RadosOmap,
    RadosResolver,
    discover_images,
    has_tx_peer,
    is_connection_shutdown,
    list_rbd_pools,
    rbd_pools,
)
from .errors import NotAuthorized, NotReady, SnapSchedError
from .handler import Handler
from .levels import ImageSpec, LevelSpec, PoolInfo
from .rbd_driver import RbdDriver
from .schedule import Schedule
from .store import SCHEDULE_OID, UPSTREAM_SCHEDULE_OID, ScheduleStore

OPTION_SCHEDULE: Final = "mirror_snapshot_schedule"
OPTION_MAX_CONCURRENT: Final = "max_concurrent_snap_create"
OPTION_REFRESH_INTERVAL: Final = "refresh_interval"
COMMAND_PREFIX: Final = "rbd mirror snapshot schedule "
UPSTREAM_MODULE: Final = "rbd_support"
RETRY_SETUP_SECONDS: Final = 5.0
SHUTDOWN_WAIT_SECONDS: Final = 60.0  # for snapshot requests in flight; never hang forever


def _cmd(verb: str, args: str, desc: str, perm: str) -> dict[str, str]:
    return {"cmd": f"{COMMAND_PREFIX}{verb} {args}", "desc": desc, "perm": perm}


class _ModuleOption:
    """``store.OptionBackend`` over a (non-localized) module option: ours, or rbd_support's."""

    def __init__(self, module: MgrModule, owner: str, name: str) -> None:
        self._module = module
        self._owner = owner
        self._name = name

    def get(self) -> str | None:
        value = self._module.get_module_option_ex(self._owner, self._name)
        return str(value) if value else None

    def set(self, value: str | None) -> None:
        # Cleared as "", not removed: a Pacific mgr keeps serving a removed option's old value
        # until it restarts, so a standby taking over would resurrect the schedule.
        self._module.set_module_option_ex(self._owner, self._name, value or "")


class _MgrClusterIO:
    """``handler.ClusterIO``: RBD pools from the mgr's OSD map, images via librbd."""

    def __init__(self, module: MgrModule, client: rados.Rados) -> None:
        self._module = module
        self._client = client

    def rbd_pools(self) -> list[PoolInfo]:
        return list_rbd_pools(self._client)

    def discover(
        self, pool: PoolInfo, wanted: Callable[[LevelSpec], bool]
    ) -> dict[ImageSpec, str] | None:
        return discover_images(self._client, pool, wanted, self._module.log)

    def has_tx_peer(self, pool_id: int) -> bool:
        try:
            return has_tx_peer(self._client, pool_id)
        except Exception as e:
            if is_connection_shutdown(e):
                raise
            self._module.log.warning("cannot list mirror peers of pool %s: %s", pool_id, e)
            return True  # unknown: let the snapshot request find out


class Module(MgrModule):
    COMMANDS = [  # noqa: RUF012 - the mgr reads these class attributes
        _cmd(
            "add",
            "name=level_spec,type=CephString name=interval,type=CephString "
            "name=start_time,type=CephString,req=false",
            "Add rbd mirror snapshot schedule",
            "w",
        ),
        _cmd(
            "remove",
            "name=level_spec,type=CephString name=interval,type=CephString,req=false "
            "name=start_time,type=CephString,req=false",
            "Remove rbd mirror snapshot schedule",
            "w",
        ),
        _cmd(
            "list",
            "name=level_spec,type=CephString,req=false",
            "List rbd mirror snapshot schedule",
            "r",
        ),
        _cmd(
            "takeover",
            "name=dry_run,type=CephBool,req=false",
            "Move rbd_support's mirror snapshot schedules to rbd_snapsched",
            "w",
        ),
        _cmd(
            "status",
            "name=level_spec,type=CephString,req=false",
            "Show rbd mirror snapshot schedule status",
            "r",
        ),
    ]
    MODULE_OPTIONS = [  # noqa: RUF012 - the mgr reads these class attributes
        Option(
            name=OPTION_SCHEDULE,
            type="str",
            default="",
            desc="the global level's mirror snapshot schedule (JSON, managed by commands)",
        ),
        Option(
            name=OPTION_MAX_CONCURRENT,
            type="int",
            default=10,
            min=1,
            runtime=True,
            desc="mirror snapshots being created at once, at most",
        ),
        Option(
            name=OPTION_REFRESH_INTERVAL,
            type="int",
            default=60,
            min=1,
            runtime=True,
            desc="seconds between full rescans of schedules and mirrored images",
        ),
    ]

    NOTIFY_TYPES = [NotifyType.osd_map]  # noqa: RUF012 - the mgr reads this class attribute

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handler: Handler | None = None
        self._upstream: ScheduleStore | None = None
        self._rbd_pool_ids: frozenset[int] = frozenset()
        self._ready = False
        self._stop = threading.Event()
        self._blocklisted = threading.Event()
        self._wake = threading.Event()

    # -- life cycle: set up, then rebuild after a blocklisting -----------------------

    def serve(self) -> None:
        while not self._stop.is_set():
            try:
                self._handler = self._setup()
                self._ready = True
                self.log.info("rbd_snapsched ready")
                self._wake.wait()
            except Exception as e:
                if is_connection_shutdown(e):
                    self._blocklisted.set()
                    self.log.warning("set-up failed, client blocklisted: %s", e)
                else:
                    self.log.exception("set-up failed, retrying in %ss", RETRY_SETUP_SECONDS)
                    self._stop.wait(RETRY_SETUP_SECONDS)
            self._ready = False
            self._teardown()
            if self._blocklisted.is_set():
                self.log.info("recovering from blocklisting: new client and handler")
                super().shutdown()  # drop the blocklisted client; `self.rados` makes a new one
                self._blocklisted.clear()
            self._wake.clear()

    def _setup(self) -> Handler:
        client = self.rados
        client.wait_for_latest_osdmap()
        resolver = RadosResolver(client)
        store = ScheduleStore(
            RadosOmap(client, SCHEDULE_OID),
            _ModuleOption(self, self.module_name, OPTION_SCHEDULE),
            resolver,
            self.log,
        )
        self._upstream = ScheduleStore(
            RadosOmap(client, UPSTREAM_SCHEDULE_OID),
            _ModuleOption(self, UPSTREAM_MODULE, OPTION_SCHEDULE),
            resolver,
            self.log,
            prune=False,
        )
        handler = Handler(
            io=_MgrClusterIO(self, client),
            resolver=resolver,
            store=store,
            upstream=self._upstream,
            driver=RbdDriver(client, self.log),
            clock=SystemClock(),
            log=self.log,
            max_concurrent=self._int_option(OPTION_MAX_CONCURRENT, 10),
            refresh_interval=float(self._int_option(OPTION_REFRESH_INTERVAL, 60)),
        )
        handler.on_fatal = self._on_fatal
        handler.on_health = self.set_health_checks
        handler.start()
        return handler

    def _teardown(self) -> None:
        handler, self._handler = self._handler, None
        if handler is not None:
            handler.shutdown(timeout=SHUTDOWN_WAIT_SECONDS)
            self.set_health_checks({})

    def _on_fatal(self, e: BaseException) -> None:
        if is_connection_shutdown(e):
            self._blocklisted.set()
        self._wake.set()

    def shutdown(self) -> None:
        self._stop.set()
        self._wake.set()
        self._ready = False
        self._teardown()
        super().shutdown()

    def _int_option(self, name: str, default: int) -> int:
        value = self.get_module_option(name, default)
        try:
            number = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return default
        if number < 1:
            self.log.error("%s must be >= 1, not %s: using %s", name, number, default)
            return default
        return number

    def notify(self, notify_type: NotifyType, notify_id: str) -> None:
        """A new OSD map: rescan at once if RBD pools appeared or went away."""
        handler = self._handler
        if notify_type != NotifyType.osd_map or handler is None:
            return
        pool_ids = frozenset(p.id for p in rbd_pools(self.get("osd_map")))
        if pool_ids != self._rbd_pool_ids:
            self._rbd_pool_ids = pool_ids
            handler.request_refresh()

    def config_notify(self) -> None:
        handler = self._handler
        if handler is not None:
            handler.set_max_concurrent(self._int_option(OPTION_MAX_CONCURRENT, 10))
            handler.set_refresh_interval(float(self._int_option(OPTION_REFRESH_INTERVAL, 60)))

    # -- commands ---------------------------------------------------------------------

    def handle_command(self, inbuf: str, cmd: dict[str, Any]) -> HandleCommandResult:
        verb = str(cmd["prefix"])[len(COMMAND_PREFIX) :]
        try:
            handler = self._handler
            if not self._ready or handler is None:
                raise NotReady("rbd_snapsched module is not ready, try again")
            self.rados.wait_for_latest_osdmap()
            if verb == "takeover":
                self._authorize(LevelSpec.global_level())
                dry_run = bool(cmd.get("dry_run", False))
                lines = handler.take_over(dry_run=dry_run, remove_upstream=self._remove_upstream)
                return HandleCommandResult(0, "\n".join(lines) + "\n", "")
            level = handler.resolve(str(cmd.get("level_spec", "")))
            if verb in ("add", "remove"):
                self._authorize(level)
            if verb == "add":
                handler.add_schedule(level, str(cmd["interval"]), cmd.get("start_time"))
                return HandleCommandResult(0, "", "")
            if verb == "remove":
                handler.remove_schedule(level, cmd.get("interval"), cmd.get("start_time"))
                return HandleCommandResult(0, "", "")
            if not level.is_global():
                self._authorize(level)
            if verb == "list":
                return self._json(handler.list(level, self._level_visible))
            if verb == "status":
                return self._json(handler.status(level, self._image_visible()))
            return HandleCommandResult(-errno.EINVAL, "", f"unknown command {cmd['prefix']}")
        except SnapSchedError as e:
            return HandleCommandResult(-e.errno, "", str(e))
        except (rados.Error, rbd.Error) as e:
            if is_connection_shutdown(e):
                self._blocklisted.set()
                self._wake.set()
                return HandleCommandResult(-errno.EAGAIN, "", str(e))
            code = getattr(e, "errno", None) or errno.EINVAL
            return HandleCommandResult(-abs(int(code)), "", str(e))
        except Exception as e:
            # Our bug: say so plainly (the traceback goes to the mgr log), keep serving.
            self.log.exception("%s failed", cmd["prefix"])
            return HandleCommandResult(-errno.EIO, "", f"internal error in rbd_snapsched: {e}")

    @staticmethod
    def _json(value: Any) -> HandleCommandResult:
        return HandleCommandResult(0, json.dumps(value, indent=4, sort_keys=True), "")

    def _remove_upstream(self, level: LevelSpec) -> str:
        """Remove a level's schedule from rbd_support, through its own command if it can.

        Its command also rebuilds its queue at once, so it stops snapshotting those images
        before our next slot. Failing that (not ready, or it rejects the level), delete the
        record from its storage directly; it drops it at its next refresh (within a minute).
        """
        command = {"prefix": f"{COMMAND_PREFIX}remove", "level_spec": level.name}
        try:
            rc, _, err = self.remote(UPSTREAM_MODULE, "handle_command", "", command)
        except Exception as e:
            rc, err = -errno.EIO, str(e)
        assert self._upstream is not None
        if rc == 0:
            if level.is_global():
                self._upstream.save(level, Schedule())  # "" rather than its removal: see above
            return ""
        self._upstream.save(level, Schedule())
        return f" (deleted from rbd_support's storage directly: {err.strip()})"

    def _level_visible(self, level: LevelSpec) -> bool:
        if level.pool_id is None:
            return self.is_authorized({})
        args = {"pool": level.name.split("/", 1)[0]}
        if level.namespace is not None:
            args["namespace"] = level.namespace
        return self.is_authorized(args)

    def _authorize(self, level: LevelSpec) -> None:
        if not self._level_visible(level):
            pool = level.name.split("/", 1)[0] if level.pool_id is not None else None
            raise NotAuthorized(f"not authorized on pool={pool}, namespace={level.namespace}")

    def _image_visible(self) -> Callable[[ImageSpec], bool]:
        if self.is_authorized({}):
            return lambda image: True
        names = {p.id: p.name for p in rbd_pools(self.get("osd_map"))}
        cache: dict[tuple[int, str], bool] = {}

        def visible(image: ImageSpec) -> bool:
            key = (image.pool_id, image.namespace)
            if key not in cache:
                pool = names.get(image.pool_id)
                cache[key] = pool is not None and self.is_authorized(
                    {"pool": pool, "namespace": image.namespace}
                )
            return cache[key]

        return visible
