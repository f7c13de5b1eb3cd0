# Type stubs for ceph-mgr's ``mgr_module`` (/usr/share/ceph/mgr/mgr_module.py, Ceph 16.2.15
# Pacific).  Only public API that rbd_snapsched uses (plus close neighbours) is declared; the
# private ``_ceph_*`` bindings of ceph_module.BaseMgrModule are deliberately left out.
# Signatures follow the Pacific source; runtime facts were checked inside a real ceph-mgr.
#
# Pacific vs later releases (not verified against a Reef build here):
#  * Pacific's MgrModule does not declare NOTIFY_TYPES; modules set it themselves
#    (NOTIFY_TYPES = [NotifyType.osd_map]).  ceph-mgr logs an error-level line "Module X has
#    missing NOTIFY_TYPES member" for modules that don't.
#  * later releases grow MgrModule.get(data_name, mutable=False), the sqlite "db" helpers and
#    MGR_POOL_NAME, which Pacific does not have.

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from enum import Enum, IntEnum
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar, Union

import rados
from typing_extensions import TypeAlias

class NotifyType(str, Enum):
    mon_map = "mon_map"
    pg_summary = "pg_summary"
    health = "health"
    clog = "clog"
    osd_map = "osd_map"
    fs_map = "fs_map"
    command = "command"

class CommandResult:
    """Completion for MgrModule.send_command()."""

    ev: threading.Event
    outs: str
    outb: str
    r: int
    tag: str
    def __init__(self, tag: str | None = None) -> None: ...
    def complete(self, r: int, outb: str, outs: str) -> None: ...
    def wait(self) -> tuple[int, str, str]: ...

class HandleCommandResult(NamedTuple):
    retval: int = 0  # 0 or -errno
    stdout: str = ""
    stderr: str = ""

class MonCommandFailed(RuntimeError): ...

class OSDMap:
    def get_epoch(self) -> int: ...
    def get_crush_version(self) -> int: ...
    def dump(self) -> dict[str, Any]: ...
    def get_pools(self) -> dict[int, dict[str, Any]]: ...
    def get_pools_by_name(self) -> dict[str, dict[str, Any]]: ...
    def get_pools_by_take(self, take: int) -> list[int]: ...
    def map_pool_pgs_up(self, poolid: int) -> list[int]: ...
    def pg_to_up_acting_osds(self, pool_id: int, ps: int) -> dict[str, Any]: ...
    def pool_raw_used_rate(self, pool_id: int) -> float: ...
    def get_ec_profile(self, name: str) -> list[dict[str, str]] | None: ...
    def get_require_osd_release(self) -> str: ...

# --- commands ------------------------------------------------------------------------------------

HandlerFuncType: TypeAlias = Callable[..., tuple[int, str, str]]
_HandlerT = TypeVar("_HandlerT", bound=HandlerFuncType)

class CLICommand:
    """Decorator registering a command handler (prefix -> handler).

    The handler's annotated parameters become the command's arguments; ``self``/``mgr``,
    ``inbuf`` and ``_`` are special.  It may return a HandleCommandResult (a tuple[int, str,
    str]).  The decorator returns the function unchanged.
    """

    COMMANDS: ClassVar[dict[str, CLICommand]]
    KNOWN_ARGS: ClassVar[tuple[str, ...]]
    prefix: str
    perm: str
    poll: bool
    func: Callable[..., Any] | None
    arg_spec: dict[str, Any]
    first_default: int
    desc: str
    args: str
    def __init__(self, prefix: str, perm: str = "rw", poll: bool = False) -> None: ...
    def __call__(self, func: _HandlerT) -> _HandlerT: ...
    def call(
        self, mgr: Any, cmd_dict: dict[str, Any], inbuf: str | None = None
    ) -> HandleCommandResult: ...
    def dump_cmd(self) -> dict[str, str | bool]: ...
    @classmethod
    def dump_cmd_list(cls) -> list[dict[str, str | bool]]: ...

def CLIReadCommand(prefix: str, poll: bool = False) -> CLICommand: ...
def CLIWriteCommand(prefix: str, poll: bool = False) -> CLICommand: ...
def CLICheckNonemptyFileInput(desc: str) -> Callable[[HandlerFuncType], HandlerFuncType]: ...

# --- module options ------------------------------------------------------------------------------

# Only defined under TYPE_CHECKING in the real module: usable in annotations, not at runtime.
OptionTypeLabel: TypeAlias = Literal[
    "uint", "int", "str", "float", "bool", "addr", "addrvec", "uuid", "size", "secs"
]

# What get_module_option() & co. return: a value of the option's declared type (int for
# 'int'/'uint'/'secs'/'size', float, bool, str), or None.
OptionValue: TypeAlias = Union[bool, int, float, str, None]  # noqa: UP007 (mypy, 3.9)

class Option(dict[str, Any]):
    """One MODULE_OPTIONS entry: a dict of the non-None keyword arguments."""

    def __init__(
        self,
        name: str,
        default: OptionValue = None,
        type: OptionTypeLabel = "str",
        desc: str | None = None,
        long_desc: str | None = None,
        min: OptionValue = None,
        max: OptionValue = None,
        enum_allowed: list[str] | None = None,
        tags: list[str] | None = None,
        see_also: list[str] | None = None,
        runtime: bool = False,
    ) -> None: ...

class Command(dict[str, Any]):
    prefix: str
    handler: HandlerFuncType
    def __init__(
        self, prefix: str, handler: HandlerFuncType, perm: str = "rw", poll: bool = False
    ) -> None: ...
    @staticmethod
    def returns_command_result(
        instance: Any, f: HandlerFuncType
    ) -> Callable[..., HandleCommandResult]: ...
    def register(self, instance: bool = False) -> HandlerFuncType: ...

# {'CHECK_NAME': {'severity': 'warning'|'error', 'summary': str, 'count': int,
#                 'detail': [str, ...]}}
HealthChecksT: TypeAlias = Mapping[str, Mapping[str, int | str | Sequence[str]]]
ServiceInfoT: TypeAlias = dict[str, str]
ServerInfoT: TypeAlias = dict[str, str | list[ServiceInfoT]]
PerfCounterT: TypeAlias = dict[str, Any]

# --- the module base class -----------------------------------------------------------------------

class MgrModuleLoggingMixin:
    def getLogger(self, name: str | None = None) -> logging.Logger: ...

class MgrModule(MgrModuleLoggingMixin):
    # Command descriptors: {'cmd': 'prefix name=x,type=CephString,req=false', 'desc': ...,
    # 'perm': 'r'|'w'|'rw', 'poll': bool}.  (Declared List[Any] in the source.)
    COMMANDS: ClassVar[list[dict[str, Any]]]
    MODULE_OPTIONS: ClassVar[list[Option]]
    MODULE_OPTION_DEFAULTS: ClassVar[dict[str, Any]]

    PRIO_CRITICAL: ClassVar[int]
    PRIO_INTERESTING: ClassVar[int]
    PRIO_USEFUL: ClassVar[int]
    PRIO_UNINTERESTING: ClassVar[int]
    PRIO_DEBUGONLY: ClassVar[int]
    PERFCOUNTER_TIME: ClassVar[int]
    PERFCOUNTER_U64: ClassVar[int]
    PERFCOUNTER_LONGRUNAVG: ClassVar[int]
    PERFCOUNTER_COUNTER: ClassVar[int]
    PERFCOUNTER_HISTOGRAM: ClassVar[int]
    PERFCOUNTER_TYPE_MASK: ClassVar[int]
    BYTES: ClassVar[int]
    NONE: ClassVar[int]

    class ClusterLogPrio(IntEnum):
        DEBUG = 0
        INFO = 1
        SEC = 2
        WARN = 3
        ERROR = 4

    module_name: str

    # ceph-mgr calls this with (module name, two PyCapsules).
    def __init__(self, module_name: str, py_modules_ptr: object, this_ptr: object) -> None: ...

    # Hooks called by ceph-mgr.  serve() runs in its own thread and should block until
    # shutdown(); the base shutdown() shuts down the shared Rados handle, so call it.
    def serve(self) -> None: ...
    def shutdown(self) -> None: ...
    # In Pacific ceph-mgr passes notify_type as a plain str (e.g. 'osd_map'); NotifyType is a
    # str enum, so comparisons with NotifyType members still work.
    def notify(self, notify_type: NotifyType, notify_id: str) -> None: ...
    def config_notify(self) -> None: ...
    # inbuf is the -i payload, '' when none; cmd has 'prefix', the declared arguments that were
    # given (absent ones are missing, not None) and 'target'.
    def handle_command(
        self, inbuf: str, cmd: dict[str, Any]
    ) -> HandleCommandResult | tuple[int, str, str]: ...
    def self_test(self) -> None: ...
    @staticmethod
    def can_run() -> tuple[bool, str]: ...
    @property
    def log(self) -> logging.Logger: ...
    @property
    def version(self) -> str: ...
    @property
    def release_name(self) -> str: ...
    # A connected librados handle shared by the module (created on first use).
    @property
    def rados(self) -> rados.Rados: ...
    def cluster_log(self, channel: str, priority: ClusterLogPrio, message: str) -> None: ...
    def lookup_release_name(self, major: int) -> str: ...
    def get_context(self) -> object: ...
    def get_mgr_id(self) -> str: ...
    def get_ceph_conf_path(self) -> str: ...
    def get_mgr_ip(self) -> str: ...
    # Cluster state, e.g. get('osd_map') -> dict.
    def get(self, data_name: str) -> Any: ...
    def get_osdmap(self) -> OSDMap: ...
    def get_server(self, hostname: str) -> ServerInfoT: ...
    def list_servers(self) -> list[ServerInfoT]: ...
    def get_metadata(
        self, svc_type: str, svc_id: str, default: dict[str, str] | None = None
    ) -> dict[str, str] | None: ...
    def get_daemon_status(self, svc_type: str, svc_id: str) -> dict[str, str]: ...
    def have_mon_connection(self) -> bool: ...

    # Mon commands.  mon_command never raises for a failed command: it returns
    # (-errno, outb, outs); check_mon_command raises MonCommandFailed instead.
    def mon_command(
        self, cmd_dict: dict[str, Any], inbuf: str | None = None
    ) -> tuple[int, str, str]: ...
    def check_mon_command(
        self, cmd_dict: dict[str, Any], inbuf: str | None = None
    ) -> HandleCommandResult: ...
    def send_command(
        self,
        result: CommandResult,
        svc_type: str,
        svc_id: str,
        command: str,
        tag: str,
        inbuf: str | None = None,
    ) -> None: ...
    def tool_exec(
        self, args: list[str], timeout: int = 10, stdin: bytes | None = None
    ) -> tuple[int, str, str]: ...

    # Replaces the module's whole set of health checks ({} clears them).
    def set_health_checks(self, checks: HealthChecksT) -> None: ...
    # Checks the caps of the session of the command being handled; called from serve() it
    # returned False in testing.
    def is_authorized(self, arguments: dict[str, str]) -> bool: ...

    # Options.  get_module_option/get_localized_module_option fall back to the Option default
    # (typed per the Option's 'type'), then to ``default``; get_module_option_ex does NOT apply
    # the Option default (None when unset).  Options not in MODULE_OPTIONS raise RuntimeError.
    def get_module_option(self, key: str, default: OptionValue = None) -> OptionValue: ...
    def get_module_option_ex(
        self, module: str, key: str, default: OptionValue = None
    ) -> OptionValue: ...
    def get_localized_module_option(self, key: str, default: OptionValue = None) -> OptionValue: ...
    # Stored as str(val); None removes the setting.
    def set_module_option(self, key: str, val: Any) -> None: ...
    def set_module_option_ex(self, module: str, key: str, val: OptionValue) -> None: ...
    def set_localized_module_option(self, key: str, val: str | None) -> None: ...
    def get_ceph_option(self, key: str) -> OptionValue: ...
    def get_foreign_ceph_option(self, entity: str, key: str) -> OptionValue: ...

    # Persistent key/value store (mon config-key, per module).  None deletes.
    def get_store(self, key: str, default: str | None = None) -> str | None: ...
    def set_store(self, key: str, val: str | None) -> None: ...
    def get_store_prefix(self, key_prefix: str) -> dict[str, str]: ...
    def get_localized_store(self, key: str, default: str | None = None) -> str | None: ...
    def set_localized_store(self, key: str, val: str | None) -> None: ...

    # Progress events (shown by `ceph -s` when add_to_ceph_s).
    def update_progress_event(
        self, evid: str, desc: str, progress: float, add_to_ceph_s: bool
    ) -> None: ...
    def complete_progress_event(self, evid: str) -> None: ...
    def clear_all_progress_events(self) -> None: ...

    # Calls a method of another enabled module; errors there surface as RuntimeError,
    # a missing method as NameError, a missing module as ImportError.
    def remote(self, module_name: str, method_name: str, *args: Any, **kwargs: Any) -> Any: ...
    def get_daemon_health_metrics(self) -> dict[str, list[dict[str, Any]]]: ...
    # Publishes the module's service URL in the mgr map (`ceph mgr services`).
    def set_uri(self, uri: str) -> None: ...

class MgrStandbyModule(MgrModuleLoggingMixin):
    """What a standby mgr runs: ``serve``/``shutdown``, read-only options and the mgr map."""

    MODULE_OPTIONS: ClassVar[list[Option]]
    MODULE_OPTION_DEFAULTS: ClassVar[dict[str, Any]]
    module_name: str

    def __init__(self, module_name: str, capsule: Any) -> None: ...
    @property
    def log(self) -> logging.Logger: ...
    def serve(self) -> None: ...
    def shutdown(self) -> None: ...
    def get_mgr_id(self) -> str: ...
    def get_module_option(self, key: str, default: OptionValue = None) -> OptionValue: ...
    def get_localized_module_option(self, key: str, default: OptionValue = None) -> OptionValue: ...
    # The active mgr's URL for this module ('' when it published none).
    def get_active_uri(self) -> str: ...
