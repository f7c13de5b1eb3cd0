"""The ceph-mgr adapter: declares commands and options, maps errors; the handler does the work."""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

import mgr_module
import rados
import rbd
from mgr_module import HandleCommandResult, MgrModule, MgrStandbyModule, NotifyType, Option

from . import metrics, pauses
from .clock import SystemClock
from .cluster import (
    RadosClusterIO,
    RadosOmap,
    RadosResolver,
    client_addrs,
    is_connection_shutdown,
    mon_election,
    rbd_pools,
)
from .commands import PREFIX, Arg, ArgType, CommandTable, Scope
from .compat import declare_commands
from .errors import InvalidArgument, NotAuthorized, NotReady, SnapSchedError
from .handler import Handler
from .httpd import MetricsServer
from .inflight import SNAP_CREATE_TIMEOUT, SNAP_CREATE_TIMEOUT_RANGE
from .levels import ImageSpec, LevelName, LevelSpec, caps_args
from .rbd_driver import RbdDriver
from .schedule import Schedule
from .store import SCHEDULE_OID, UPSTREAM_SCHEDULE_OID, ModuleOption, ScheduleStore

OPTION_SCHEDULE: Final = "mirror_snapshot_schedule"
OPTION_MAX_CONCURRENT: Final = "max_concurrent_snap_create"
OPTION_REFRESH_INTERVAL: Final = "refresh_interval"
OPTION_PAUSED: Final = pauses.OPTION
OPTION_LATE_FACTOR: Final = "late_factor"
OPTION_METRICS_ADDR: Final = "metrics_server_addr"
OPTION_METRICS_PORT: Final = "metrics_server_port"
OPTION_IMAGE_SERIES: Final = "metrics_image_series_limit"
OPTION_STAGGER: Final = "stagger"
OPTION_PACE: Final = "skip_when_peer_lags"
OPTION_SNAP_CREATE_TIMEOUT: Final = "snap_create_timeout"
DEFAULT_METRICS_PORT: Final = 9289
MAX_LATE_FACTOR: Final = 1000.0
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
        Option(
            name=OPTION_SCHEDULE,
            type="str",
            default="",
            desc="the global level's mirror snapshot schedule (JSON, managed by commands)",
        ),
        Option(
            name=OPTION_PAUSED,
            type="str",
            default="",
            desc="paused levels (JSON, managed by the pause and resume commands)",
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
        Option(
            name=OPTION_LATE_FACTOR,
            type="float",
            default=2.0,
            min=1.0,
            max=MAX_LATE_FACTOR,
            runtime=True,
            desc="an image is late (RBD_SNAPSCHED_LATE) once its last mirror snapshot is older "
            "than this many times its interval",
        ),
        Option(
            name=OPTION_METRICS_ADDR,
            type="str",
            default="::",
            runtime=True,
            desc="address the Prometheus metrics endpoint listens on (per mgr: localized)",
        ),
        Option(
            name=OPTION_METRICS_PORT,
            type="int",
            default=DEFAULT_METRICS_PORT,
            min=0,
            max=65535,
            runtime=True,
            desc="port of the Prometheus metrics endpoint (0: off)",
        ),
        Option(
            name=OPTION_IMAGE_SERIES,
            type="int",
            default=10000,
            min=0,
            runtime=True,
            desc="per-image metric series only while at most this many images are scheduled "
            "(0: never); pool aggregates always",
        ),
        Option(
            name=OPTION_STAGGER,
            type="bool",
            default=False,
            runtime=True,
            desc="spread images of a schedule without a start time over its interval, by a "
            "stable per-image offset (upstream main's behaviour; off: Pacific-Tentacle's)",
        ),
        Option(
            name=OPTION_PACE,
            type="bool",
            default=True,
            runtime=True,
            desc="skip an image's slot while a mirror peer has not synced its previous mirror "
            "snapshot (counted, RBD_SNAPSCHED_PEER_LAGGING); off: create it anyway, as "
            "rbd_support does, and librbd unlinks unsynced ones past "
            "rbd_mirroring_max_mirroring_snapshots",
        ),
        Option(
            name=OPTION_SNAP_CREATE_TIMEOUT,
            type="int",
            default=int(SNAP_CREATE_TIMEOUT),
            min=int(SNAP_CREATE_TIMEOUT_RANGE[0]),
            max=int(SNAP_CREATE_TIMEOUT_RANGE[1]),
            runtime=True,
            desc="seconds a mirror snapshot request may hold its max_concurrent_snap_create "
            "slot (e.g. an image's exclusive lock owner does not answer): then it counts as "
            "failed (ETIMEDOUT), its slot goes to the next image, and its image gets no new "
            "request until librbd ends it",
        ),
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
        self._endpoint = _Endpoint(self, self._scrape, lambda: "rbd_snapsched is not ready yet")

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
        self._driver = RbdDriver(client, self.log, check_peer=self._bool_option(OPTION_PACE, True))
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
            max_concurrent=self._int_option(OPTION_MAX_CONCURRENT, 10),
            refresh_interval=float(self._int_option(OPTION_REFRESH_INTERVAL, 60)),
            late_factor=self._late_factor(),
            stagger=self._stagger(),
            snap_create_timeout=self._snap_create_timeout(),
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

    def _int_option(self, name: str, default: int, least: int = 1) -> int:
        value = self.get_module_option(name, default)
        try:
            number = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return default
        if number < least:
            self.log.error("%s must be >= %s, not %s: using %s", name, least, number, default)
            return default
        return number

    def _late_factor(self) -> float:
        value = self.get_module_option(OPTION_LATE_FACTOR, 2.0)
        try:
            factor = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            factor = 0.0
        if not 1.0 <= factor <= MAX_LATE_FACTOR:  # NaN too; Pacific's mon enforces no bounds
            self.log.error(
                "%s must be from 1 to %g, not %s: using 2",
                OPTION_LATE_FACTOR,
                MAX_LATE_FACTOR,
                value,
            )
            return 2.0
        return factor

    def _snap_create_timeout(self) -> float:
        value = self.get_module_option(OPTION_SNAP_CREATE_TIMEOUT, SNAP_CREATE_TIMEOUT)
        low, high = SNAP_CREATE_TIMEOUT_RANGE
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            seconds = -1.0
        if not low <= seconds <= high:  # NaN too; Pacific's mon enforces no bounds
            self.log.error(
                "%s must be from %g to %g seconds, not %s: using %g",
                OPTION_SNAP_CREATE_TIMEOUT,
                low,
                high,
                value,
                SNAP_CREATE_TIMEOUT,
            )
            return SNAP_CREATE_TIMEOUT
        return seconds

    def _stagger(self) -> bool:
        return self._bool_option(OPTION_STAGGER, False)

    def _bool_option(self, name: str, default: bool) -> bool:
        value = self.get_module_option(name, default)
        if isinstance(value, str):  # a Pacific mgr may hand over the stored text
            return value.strip().lower() in ("true", "1", "yes", "on")
        return bool(value)

    def _scrape(self) -> bytes | None:
        """The metrics text; None while not ready (answered 503, never stale numbers)."""
        handler = self._handler
        if not self._ready or handler is None:
            return None
        limit = self._int_option(OPTION_IMAGE_SERIES, 10000, least=0)
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
            self._tell_election(self.get("mon_status"))
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

    def _tell_election(self, status: Any) -> None:
        """Log a new monitor election (a mon restarted, or the quorum changed) once seen."""
        seen = mon_election(status)
        if seen is None:
            return
        epoch, quorum = seen
        previous, self._election_epoch = self._election_epoch, epoch
        if previous is not None and epoch != previous:
            self.log.info(
                "monitor election: epoch %s -> %s, quorum %s (a monitor restarted or the "
                "quorum changed)",
                previous,
                epoch,
                ",".join(quorum) or "?",
            )

    def config_notify(self) -> None:
        handler = self._handler
        if handler is not None:
            handler.set_max_concurrent(self._int_option(OPTION_MAX_CONCURRENT, 10))
            handler.set_refresh_interval(float(self._int_option(OPTION_REFRESH_INTERVAL, 60)))
            handler.set_late_factor(self._late_factor())
            handler.set_stagger(self._stagger())
            handler.set_snap_create_timeout(self._snap_create_timeout())
        driver = self._driver
        if driver is not None:
            driver.set_check_peer(self._bool_option(OPTION_PACE, True))
        self._endpoint.configure()

    # -- commands ---------------------------------------------------------------------

    def handle_command(self, inbuf: str, cmd: dict[str, Any]) -> HandleCommandResult:
        prefix = str(cmd["prefix"])
        command = TABLE.get(prefix)
        try:
            if command is None:
                raise InvalidArgument(f"unknown command {prefix}")
            handler = self._handler
            if not self._ready or handler is None:
                raise NotReady("rbd_snapsched module is not ready, try again")
            self.rados.wait_for_latest_osdmap()
            args = command.arguments(cmd)
            if "level_spec" in {a.name for a in command.args}:
                text = str(args.pop("level_spec", ""))
                # Caps first, from the name alone: a client refused a pool gets EACCES, never
                # whether a pool, namespace or image exists there.
                name = LevelName.parse(text)
                if command.scope is Scope.LEVEL or name.pool is not None:
                    self._authorize(name)
                args["level"] = handler.resolve(text)
            elif command.scope is not Scope.VISIBLE:
                self._authorize(LevelName(None, None, None))
            result: HandleCommandResult = command.handler(self, handler, **args)
            return result
        except SnapSchedError as e:
            return HandleCommandResult(-e.errno, "", e.reply())
        except (rados.Error, rbd.Error) as e:
            if is_connection_shutdown(e):
                self._blocklisted.set()
                self._wake.set()
                return HandleCommandResult(-errno.EAGAIN, "", str(e))
            code = getattr(e, "errno", None) or errno.EINVAL
            return HandleCommandResult(-abs(int(code)), "", str(e))
        except Exception as e:
            # Our bug: say so plainly (the traceback goes to the mgr log), keep serving.
            self.log.exception("%s failed", prefix)
            return HandleCommandResult(-errno.EIO, "", f"internal error in rbd_snapsched: {e}")

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
    ) -> HandleCommandResult:
        handler.add_schedule(level, interval, start_time)
        return HandleCommandResult(0, "", "")

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
    ) -> HandleCommandResult:
        handler.remove_schedule(level, interval, start_time)
        return HandleCommandResult(0, "", "")

    @_command(
        "list",
        _OPTIONAL_LEVEL,
        desc="List rbd mirror snapshot schedule",
        perm="r",
        scope=Scope.VISIBLE,
    )
    def _list(self, handler: Handler, level: LevelSpec) -> HandleCommandResult:
        return self._json(handler.list(level, self._level_visible))

    @_command(
        "pause",
        _LEVEL,
        desc="Pause scheduled mirror snapshots under a level (kept across restarts)",
        perm="w",
        scope=Scope.LEVEL,
    )
    def _pause(self, handler: Handler, level: LevelSpec) -> HandleCommandResult:
        return HandleCommandResult(0, handler.pause(level) + "\n", "")

    @_command(
        "resume",
        _LEVEL,
        desc="Resume scheduled mirror snapshots under a paused level",
        perm="w",
        scope=Scope.LEVEL,
    )
    def _resume(self, handler: Handler, level: LevelSpec) -> HandleCommandResult:
        return HandleCommandResult(0, handler.resume(level) + "\n", "")

    @_command(
        "snapshot-now",
        _LEVEL,
        desc="Create one mirror snapshot of each primary image under a level now",
        perm="w",
        scope=Scope.LEVEL,
    )
    def _snapshot_now(self, handler: Handler, level: LevelSpec) -> HandleCommandResult:
        return HandleCommandResult(0, handler.snapshot_now(level) + "\n", "")

    @_command(
        "explain",
        _OPTIONAL_LEVEL,
        Arg("count", ArgType.INT, required=False),
        desc="Explain which schedule governs each image under a level, and its next runs",
        perm="r",
        scope=Scope.VISIBLE,
    )
    def _explain(self, handler: Handler, level: LevelSpec, count: int = 5) -> HandleCommandResult:
        return self._json(handler.explain(level, int(count), self._image_visible()))

    @_command(
        "takeover",
        Arg("dry_run", ArgType.BOOL, required=False),
        desc="Move rbd_support's mirror snapshot schedules to rbd_snapsched",
        perm="w",
        scope=Scope.GLOBAL,
    )
    def _takeover(self, handler: Handler, dry_run: bool = False) -> HandleCommandResult:
        lines = handler.take_over(dry_run=bool(dry_run), remove_upstream=self._remove_upstream)
        return HandleCommandResult(0, "\n".join(lines) + "\n", "")

    @_command(
        "report",
        _OPTIONAL_LEVEL,
        desc="Show each scheduled image's last mirror snapshot, lateness and last result",
        perm="r",
        scope=Scope.VISIBLE,
    )
    def _report(self, handler: Handler, level: LevelSpec) -> HandleCommandResult:
        return HandleCommandResult(0, handler.report(level, self._image_visible()), "")

    @_command(
        "status",
        _OPTIONAL_LEVEL,
        desc="Show rbd mirror snapshot schedule status",
        perm="r",
        scope=Scope.VISIBLE,
    )
    def _status(self, handler: Handler, level: LevelSpec) -> HandleCommandResult:
        return self._json(handler.status(level, self._image_visible()))

    @staticmethod
    def _json(value: Any) -> HandleCommandResult:
        return HandleCommandResult(0, json.dumps(value, indent=4, sort_keys=True), "")

    def _remove_upstream(self, level: LevelSpec) -> str:
        """Remove a level's schedule from rbd_support, through its own command if it can.

        Its command also rebuilds its queue at once, so it stops snapshotting those images
        before our next slot. Failing that (not ready, or it rejects the level), delete the
        record from its storage directly; it drops it at its next refresh (within a minute).
        """
        command = {"prefix": f"{PREFIX} remove", "level_spec": level.name}
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

    def _authorize(self, name: LevelName) -> None:
        if not self.is_authorized(caps_args(name)):
            raise NotAuthorized(f"not authorized on pool={name.pool}, namespace={name.namespace}")

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


class _Endpoint:
    """The metrics endpoint of one mgr, active or standby: (re)bound to the localized address
    and port options, its URL published in the mgr map by the active one."""

    def __init__(
        self,
        module: MgrModule | MgrStandbyModule,
        source: Callable[[], bytes | None],
        unavailable: Callable[[], str],
    ) -> None:
        self._module = module
        self._source = source
        self._unavailable = unavailable
        self._server: MetricsServer | None = None
        self._bound: tuple[str, int] | None = None  # listening there (port 0: off)
        self._failed: tuple[str, int] | None = None  # the last bind that failed
        self._closed = False
        self._lock = threading.Lock()

    def configure(self) -> None:
        """Bind to the configured address and port, if they changed; port 0 stops it.

        Never raises: the metrics endpoint failing must not take the scheduler with it."""
        try:
            self._configure()
        except Exception:
            self._module.log.exception("metrics endpoint: configuring it failed")

    def _configure(self) -> None:
        get = self._module.get_localized_module_option
        addr = str(get(OPTION_METRICS_ADDR, "::") or "::")
        try:
            port = int(get(OPTION_METRICS_PORT, DEFAULT_METRICS_PORT))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            port = -1
        if not 0 <= port <= 65535:  # Pacific's mon enforces no bounds
            self._module.log.error("metrics_server_port must be from 0 to 65535: endpoint off")
            port = 0
        with self._lock:
            if self._closed or self._bound == (addr, port):
                return
            self._stop_locked()
            if port == 0:
                self._bound = (addr, port)
                return
            server = MetricsServer(
                addr, port, self._source, self._module.log, unavailable=self._unavailable
            )
            try:
                server.start()
            except OSError as e:
                # Tried again at the next look (an option change; a standby's poll), told once.
                level = logging.DEBUG if self._failed == (addr, port) else logging.ERROR
                self._module.log.log(
                    level, "metrics endpoint: cannot listen on %s:%s: %s", addr, port, e
                )
                self._failed = (addr, port)
                return
            self._server, self._bound, self._failed = server, (addr, port), None
            self._module.log.info("metrics endpoint at %s", server.url)
            self._publish(server.url)

    def stop(self) -> None:
        """Stop for good (the module is shutting down)."""
        with self._lock:
            self._closed = True
            self._stop_locked()

    def _stop_locked(self) -> None:
        server, self._server = self._server, None
        self._bound = None
        if server is not None:
            server.stop()
            self._publish("")  # no stale URL in `ceph mgr services`

    def _publish(self, url: str) -> None:
        if isinstance(self._module, MgrModule):
            self._module.set_uri(url)


class StandbyModule(MgrStandbyModule):
    """On a standby mgr: the metrics endpoint answers 503 and names the active one's, so a
    scrape of every mgr reads numbers from the active only, never stale ones."""

    MODULE_OPTIONS = Module.MODULE_OPTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop = threading.Event()
        self._endpoint = _Endpoint(self, lambda: None, self._unavailable)

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


declare_commands(Module, TABLE, mgr_module)
