"""The ceph-mgr adapter: hooks, commands through one table and one responder, options from
settings.py, errors mapped once, blocklist recovery; the handler does the work."""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

import mgr_module
from mgr_module import HandleCommandResult, MgrModule, MgrStandbyModule, NotifyType, Option

from . import access, changes, metrics, pauses, settings, sync
from .clock import SystemClock
from .cluster import (
    RadosClusterIO,
    RadosOmap,
    RadosResolver,
    client_addrs,
    command_failure,
    is_connection_shutdown,
    mon_election,
    rbd_pools,
)
from .commands import Arg, ArgType, CommandTable, JsonText, Reply, Scope, respond
from .compat import declare_commands, remove_upstream_level
from .endpoint import Endpoint
from .errors import InvalidArgument, NotReady, SnapSchedError
from .handler import Handler
from .levels import ImageSpec, LevelName, LevelSpec
from .rbd_driver import RbdDriver
from .schedule import Schedule
from .store import SCHEDULE_OID, UPSTREAM_SCHEDULE_OID, ModuleOption, ScheduleStore

OPTION_SCHEDULE: Final = settings.SCHEDULE.name
OPTION_PAUSED: Final = settings.PAUSED.name
UPSTREAM_MODULE: Final = "rbd_support"
RETRY_SETUP_SECONDS: Final = 5.0
SHUTDOWN_WAIT_SECONDS: Final = 60.0  # for snapshot requests in flight; never hang forever
WATCH_SECONDS: Final = 5.0  # how often the module's thread looks for stalled requests and
# retries a metrics endpoint that could not bind
ACTIVE_MGR_KEY: Final = "active_mgr"  # the mgr the module last ran active on (failover line)


TABLE = CommandTable()
_command = TABLE.command
_LEVEL = Arg("level_spec")
_OPTIONAL_LEVEL = Arg("level_spec", required=False)


class Module(MgrModule):
    MODULE_OPTIONS = [  # noqa: RUF012 - the mgr reads these class attributes
        Option(**spec.declaration()) for spec in settings.OPTIONS
    ]

    # health: after every digest from the mons (a few seconds), whose mon_status tells elections
    NOTIFY_TYPES = [NotifyType.osd_map, NotifyType.health]  # noqa: RUF012 - read by the mgr

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handler: Handler | None = None
        self._driver: RbdDriver | None = None
        self._upstream: ScheduleStore | None = None
        self._rbd_pool_ids: frozenset[int] = frozenset()
        self._ready = False
        self._stop = threading.Event()
        self._blocklisted = threading.Event()
        self._wake = threading.Event()
        self._client_addrs: frozenset[str] = frozenset()  # our rados client's, as blocklisted
        self._election_epoch: int | None = None
        get, not_ready = self.get_localized_module_option, lambda: "rbd_snapsched is not ready yet"
        self._endpoint = Endpoint(self.log, get, self.set_uri, self._scrape, not_ready)

    # -- life cycle: set up, then rebuild after a blocklisting -----------------------

    def serve(self) -> None:
        self._endpoint.configure()
        self._tell_takeover()
        while not self._stop.is_set():
            try:
                self._handler = handler = self._setup()
                self._ready = True
                self.log.info("rbd_snapsched ready")
                while not self._wake.wait(WATCH_SECONDS):
                    handler.watch()
                    self._adopt(handler)
                    # A bind that failed (the port still held by this mgr's standby instance
                    # after a failover, or by another process) is tried again here, not only
                    # at the next option change.
                    self._endpoint.configure()
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

    def _adopt(self, handler: Handler) -> None:
        """With ``adopt_rbd_support_schedules`` on, move what rbd_support holds into ours."""
        if not settings.read_flag(self.get_module_option, settings.ADOPT):
            return
        try:
            for line in handler.adopt_upstream(self._remove_upstream):
                self.log.info("adopt_rbd_support_schedules: %s", line)
        except SnapSchedError as e:  # a level did not read back: rbd_support keeps it
            self.log.warning("adopt_rbd_support_schedules: %s", e)

    def _tell_takeover(self) -> None:
        """Say once, when this mgr becomes active, whether it takes over from another one
        (a failover: the requests that one had in flight are gone)."""
        try:
            me = self.get_mgr_id()
            previous = self.get_store(ACTIVE_MGR_KEY)
            if previous and previous != me:
                self.log.info("active on mgr %s, taking over from mgr %s (failover)", me, previous)
            if previous != me:
                self.set_store(ACTIVE_MGR_KEY, me)
        except Exception as e:  # a remark only: never keep the scheduler from starting
            self.log.warning("cannot tell the previous active mgr: %s", e)

    def _setup(self) -> Handler:
        client = self.rados
        self._client_addrs = client_addrs(client.get_addrs())
        client.wait_for_latest_osdmap()
        resolver = RadosResolver(client)
        store = ScheduleStore(
            RadosOmap(client, SCHEDULE_OID),
            ModuleOption(self, self.module_name, OPTION_SCHEDULE),
            resolver,
            self.log,
        )
        self._upstream = ScheduleStore(
            RadosOmap(client, UPSTREAM_SCHEDULE_OID),
            ModuleOption(self, UPSTREAM_MODULE, OPTION_SCHEDULE),
            resolver,
            self.log,
            prune=False,
        )
        now = self._settings()
        self._driver = RbdDriver(client, self.log, check_peer=now.skip_when_peer_lags)
        handler = Handler(
            io=RadosClusterIO(client, self.log),
            resolver=resolver,
            store=store,
            upstream=self._upstream,
            pauses=pauses.PauseStore(
                ModuleOption(self, self.module_name, OPTION_PAUSED), resolver, self.log
            ),
            driver=self._driver,
            clock=SystemClock(),
            log=self.log,
            settings=now,
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
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.close()

    def _on_fatal(self, e: BaseException) -> None:
        if is_connection_shutdown(e):
            self._blocklisted.set()
        self._wake.set()

    def shutdown(self) -> None:
        self._stop.set()
        self._wake.set()
        self._ready = False
        self._endpoint.stop()
        self._teardown()
        super().shutdown()

    def _settings(self) -> settings.Settings:
        return settings.read_settings(self.get_module_option, self.log)

    def _scrape(self) -> bytes | None:
        """The metrics text; None while not ready (answered 503, never stale numbers)."""
        handler = self._handler
        if not self._ready or handler is None:
            return None
        limit = settings.read_int(self.get_module_option, settings.IMAGE_SERIES, self.log)
        sample = handler.metrics(limit)
        driver = self._driver
        if driver is not None:
            sample = replace(
                sample, open_images=driver.open_images(), open_ioctxs=driver.open_handles()
            )
        return metrics.render(sample)

    def notify(self, notify_type: NotifyType, notify_id: str) -> None:
        """A new OSD map: recover at once if it blocklists our client; rescan at once if RBD
        pools appeared or went away. A mon digest: tell a new monitor election."""
        if notify_type == NotifyType.health:
            seen = mon_election(self.get("mon_status"))
            self._election_epoch, line = changes.election(self._election_epoch, seen)
            if line is not None:
                self.log.log(line.level, line.text, *line.args)
            return
        handler = self._handler
        if notify_type != NotifyType.osd_map or handler is None:
            return
        osd_map = self.get("osd_map")
        listed = self._client_addrs & set(osd_map.get("blocklist") or {})
        if listed and not self._blocklisted.is_set():
            # Before any request or refresh trips over it: a client blocklisted while idle
            # would otherwise fail the next slot's every request first.
            self.log.warning(
                "client %s blocklisted (osdmap e%s): recovering with a new client",
                ", ".join(sorted(listed)),
                osd_map.get("epoch"),
            )
            self._blocklisted.set()
            self._wake.set()
            return
        pool_ids = frozenset(p.id for p in rbd_pools(osd_map))
        if pool_ids != self._rbd_pool_ids:
            self._rbd_pool_ids = pool_ids
            handler.request_refresh()

    def config_notify(self) -> None:
        handler, driver = self._handler, self._driver
        if handler is not None or driver is not None:
            now = self._settings()
            if handler is not None:
                handler.apply(now)
            if driver is not None:
                driver.set_check_peer(now.skip_when_peer_lags)
        self._endpoint.configure()

    # -- commands ---------------------------------------------------------------------

    def handle_command(self, inbuf: str, cmd: dict[str, Any]) -> HandleCommandResult:
        prefix = str(cmd["prefix"])
        command = TABLE.get(prefix)
        handler = self._handler
        try:
            if command is None:
                raise InvalidArgument(f"unknown command {prefix}")
            if not self._ready or handler is None:
                raise NotReady("rbd_snapsched module is not ready, try again")
            args = command.arguments(cmd)
            if "level_spec" in {a.name for a in command.args}:
                text = str(args.pop("level_spec", ""))
                # Caps first, from the name alone: a client refused a pool gets EACCES, never
                # whether a pool, namespace or image exists there.
                name = LevelName.parse(text)
                if command.scope is Scope.LEVEL or name.pool is not None:
                    access.authorize(self.is_authorized, name)
                if command.needs_fresh_pools(name.pool is not None):
                    self.rados.wait_for_latest_osdmap()
                args["level"] = handler.resolve(text)
            else:
                if command.needs_fresh_pools(None):
                    self.rados.wait_for_latest_osdmap()
                if command.scope is not Scope.VISIBLE:
                    access.authorize(self.is_authorized, LevelName(None, None, None))
            if command.formats:
                args["as_json"] = command.wants_json(cmd)
            return HandleCommandResult(0, respond(command.handler(self, handler, **args)), "")
        except SnapSchedError as e:
            return HandleCommandResult(-e.errno, "", e.reply())
        except Exception as e:
            failure = command_failure(e, rebuilding=self._handler is not handler)
            if failure.blocklisted:
                self._blocklisted.set()
                self._wake.set()
            elif failure.bug:
                # Our bug: say so plainly (the traceback goes to the mgr log), keep serving.
                self.log.exception("%s failed", prefix)
            return HandleCommandResult(failure.rc, "", failure.text)

    @_command(
        "add",
        _LEVEL,
        Arg("interval"),
        Arg("start_time", required=False),
        desc="Add rbd mirror snapshot schedule",
        perm="w",
        scope=Scope.LEVEL,
    )
    def _add(
        self, handler: Handler, level: LevelSpec, interval: str, start_time: str | None = None
    ) -> None:
        handler.add_schedule(level, interval, start_time)

    @_command(
        "remove",
        _LEVEL,
        Arg("interval", required=False),
        Arg("start_time", required=False),
        desc="Remove rbd mirror snapshot schedule",
        perm="w",
        scope=Scope.LEVEL,
    )
    def _remove(
        self,
        handler: Handler,
        level: LevelSpec,
        interval: str | None = None,
        start_time: str | None = None,
    ) -> None:
        handler.remove_schedule(level, interval, start_time)

    @_command(
        "list",
        _OPTIONAL_LEVEL,
        desc="List rbd mirror snapshot schedule",
        perm="r",
        scope=Scope.VISIBLE,
    )
    def _list(self, handler: Handler, level: LevelSpec) -> Reply:
        return JsonText(handler.list_text(level, access.level_visible(self.is_authorized)))

    @_command(
        "pause",
        _LEVEL,
        desc="Pause scheduled mirror snapshots under a level (kept across restarts)",
        perm="w",
        scope=Scope.LEVEL,
    )
    def _pause(self, handler: Handler, level: LevelSpec) -> Reply:
        return handler.pause(level)

    @_command(
        "resume",
        _LEVEL,
        desc="Resume scheduled mirror snapshots under a paused level",
        perm="w",
        scope=Scope.LEVEL,
    )
    def _resume(self, handler: Handler, level: LevelSpec) -> Reply:
        return handler.resume(level)

    @_command(
        "snapshot-now",
        _LEVEL,
        desc="Create one mirror snapshot of each primary image under a level now",
        perm="w",
        scope=Scope.LEVEL,
        formats=True,
    )
    def _snapshot_now(self, handler: Handler, level: LevelSpec, as_json: bool = False) -> Reply:
        requested = handler.snapshot_now(level)
        return requested.json() if as_json else requested.text()

    @_command(
        "snapshot-now-status",
        _LEVEL,
        Arg("requested_at"),
        desc="Show which primary images under a level have a mirror snapshot taken since a "
        "snapshot-now's requested_at",
        perm="r",
        scope=Scope.LEVEL,
        formats=True,
    )
    def _snapshot_now_status(
        self, handler: Handler, level: LevelSpec, requested_at: str, as_json: bool = False
    ) -> Reply:
        synced = handler.sync_status(level, sync.parse_since(requested_at))
        return synced.json() if as_json else synced.text()

    @_command(
        "explain",
        _OPTIONAL_LEVEL,
        Arg("count", ArgType.INT, required=False),
        desc="Explain which schedule governs each image under a level, and its next runs",
        perm="r",
        scope=Scope.VISIBLE,
    )
    def _explain(self, handler: Handler, level: LevelSpec, count: int = 5) -> Reply:
        return handler.explain(level, count, self._image_visible())

    @_command(
        "takeover",
        Arg("dry_run", ArgType.BOOL, required=False),
        desc="Move rbd_support's mirror snapshot schedules to rbd_snapsched",
        perm="w",
        scope=Scope.GLOBAL,
    )
    def _takeover(self, handler: Handler, dry_run: bool = False) -> Reply:
        return handler.take_over(dry_run=dry_run, remove_upstream=self._remove_upstream)

    @_command(
        "report",
        _OPTIONAL_LEVEL,
        desc="Show each scheduled image's last mirror snapshot, lateness and last result",
        perm="r",
        scope=Scope.VISIBLE,
    )
    def _report(self, handler: Handler, level: LevelSpec) -> Reply:
        return handler.report(level, self._image_visible())

    @_command(
        "status",
        _OPTIONAL_LEVEL,
        desc="Show rbd mirror snapshot schedule status",
        perm="r",
        scope=Scope.VISIBLE,
    )
    def _status(self, handler: Handler, level: LevelSpec) -> Reply:
        return JsonText(handler.status_text(level, self._image_visible()))

    def _remove_upstream(self, level: LevelSpec) -> str:
        """Remove a level's schedule from rbd_support, through its own command if it can.

        Its command also rebuilds its queue at once, so it stops snapshotting those images
        before our next slot. Failing that (not ready, or it rejects the level), delete the
        record from its storage directly; it drops it at its next refresh (within a minute).
        """
        try:
            rc, err = remove_upstream_level(self.remote, UPSTREAM_MODULE, level.name)
        except Exception as e:
            rc, err = -errno.EIO, str(e)
        assert self._upstream is not None
        if rc == 0:
            if level.is_global():
                self._upstream.save(level, Schedule())  # "" rather than its removal: see above
            return ""
        self._upstream.save(level, Schedule())
        return f" (deleted from rbd_support's storage directly: {err.strip()})"

    def _image_visible(self) -> Callable[[ImageSpec], bool]:
        return access.image_visible(
            self.is_authorized, lambda: {p.id: p.name for p in rbd_pools(self.get("osd_map"))}
        )


class StandbyModule(MgrStandbyModule):
    """On a standby mgr: the metrics endpoint answers 503 and names the active one's, so a
    scrape of every mgr reads numbers from the active only, never stale ones."""

    MODULE_OPTIONS = Module.MODULE_OPTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop = threading.Event()
        self._endpoint = Endpoint(
            self.log,
            self.get_localized_module_option,
            lambda url: None,
            lambda: None,
            self._unavailable,
        )

    def _unavailable(self) -> str:
        active = self.get_active_uri()
        where = f"; the active mgr serves metrics at {active}" if active else ""
        return f"rbd_snapsched: mgr {self.get_mgr_id()} is a standby{where}"

    def serve(self) -> None:
        while not self._stop.is_set():
            self._endpoint.configure()  # a standby gets no config_notify: look now and then
            self._stop.wait(10)
        self._endpoint.stop()

    def shutdown(self) -> None:
        self._stop.set()

    def _unconfigure_logging(self) -> None:
        """Remove this instance's log handlers only. Ceph's version (called from ``__del__``)
        removes every mgr log handler of the interpreter's root logger, and when a standby
        becomes active, this instance may be collected after the active ``Module`` of the same
        interpreter set up its own: every line the module logged after a failover was lost
        (seen in the fault suite: no 'taking over' line, no 'ready'). The active module's
        set-up still removes this instance's handlers (it calls Ceph's version first)."""
        root = logging.getLogger()
        for name in ("_mgr_log_handler", "_file_log_handler", "_cluster_log_handler"):
            handler = getattr(self, name, None)
            if isinstance(handler, logging.Handler) and handler in root.handlers:
                root.removeHandler(handler)
        self.log_to_file = False
        self.log_to_cluster = False


declare_commands(Module, TABLE, mgr_module)
