# Type stubs for the ``rbd`` Cython binding (python3-rbd), as shipped with Ceph 16.2.15 Pacific.
# Only the surface rbd_snapsched uses (plus close neighbours) is declared.  Image methods are
# wrapped by ``requires_not_closed`` in the binding, so their signatures are not introspectable;
# they were taken from the docstrings embedded in the compiled module and checked by calling
# them on a throwaway cluster.
#
# The TypedDicts below (ImageListEntry, MirrorImageInfo, ...) exist only in these stubs: the
# binding returns plain dicts.  Import them under ``if TYPE_CHECKING:`` only.

import builtins
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Literal, TypedDict

from rados import Ioctx, Rados
from typing_extensions import NotRequired, Self

# --- constants -----------------------------------------------------------------------------------

ECANCELED: int

# Pool / namespace mirror mode (RBD.mirror_mode_get/set).  A namespace has its own mirror mode:
# a namespace of an "image"-mode pool starts out DISABLED.
RBD_MIRROR_MODE_DISABLED: int
RBD_MIRROR_MODE_IMAGE: int
RBD_MIRROR_MODE_POOL: int

# Image mirror mode (Image.mirror_image_get_mode / mirror_image_enable(mode=...)).
RBD_MIRROR_IMAGE_MODE_JOURNAL: int
RBD_MIRROR_IMAGE_MODE_SNAPSHOT: int

# Image mirror state: the "state" key of MirrorImageInfo.
RBD_MIRROR_IMAGE_DISABLING: int
RBD_MIRROR_IMAGE_ENABLED: int
RBD_MIRROR_IMAGE_DISABLED: int

RBD_MIRROR_PEER_DIRECTION_RX: int
RBD_MIRROR_PEER_DIRECTION_TX: int
RBD_MIRROR_PEER_DIRECTION_RX_TX: int
RBD_MIRROR_PEER_ATTRIBUTE_NAME_MON_HOST: str
RBD_MIRROR_PEER_ATTRIBUTE_NAME_KEY: str

# The "state" of a mirror image status.
MIRROR_IMAGE_STATUS_STATE_UNKNOWN: int
MIRROR_IMAGE_STATUS_STATE_ERROR: int
MIRROR_IMAGE_STATUS_STATE_SYNCING: int
MIRROR_IMAGE_STATUS_STATE_STARTING_REPLAY: int
MIRROR_IMAGE_STATUS_STATE_REPLAYING: int
MIRROR_IMAGE_STATUS_STATE_STOPPING_REPLAY: int
MIRROR_IMAGE_STATUS_STATE_STOPPED: int

RBD_SNAP_NAMESPACE_TYPE_USER: int
RBD_SNAP_NAMESPACE_TYPE_GROUP: int
RBD_SNAP_NAMESPACE_TYPE_TRASH: int
RBD_SNAP_NAMESPACE_TYPE_MIRROR: int

RBD_SNAP_MIRROR_STATE_PRIMARY: int
RBD_SNAP_MIRROR_STATE_PRIMARY_DEMOTED: int
RBD_SNAP_MIRROR_STATE_NON_PRIMARY: int
RBD_SNAP_MIRROR_STATE_NON_PRIMARY_DEMOTED: int

# Flags for create_snap / mirror_image_create_snapshot / aio_mirror_image_create_snapshot.
RBD_SNAP_CREATE_SKIP_QUIESCE: int
RBD_SNAP_CREATE_IGNORE_QUIESCE_ERROR: int

RBD_SNAP_REMOVE_UNPROTECT: int
RBD_SNAP_REMOVE_FLATTEN: int
RBD_SNAP_REMOVE_FORCE: int

RBD_FEATURE_LAYERING: int
RBD_FEATURE_STRIPINGV2: int
RBD_FEATURE_EXCLUSIVE_LOCK: int
RBD_FEATURE_OBJECT_MAP: int
RBD_FEATURE_FAST_DIFF: int
RBD_FEATURE_DEEP_FLATTEN: int
RBD_FEATURE_JOURNALING: int
RBD_FEATURE_DATA_POOL: int
RBD_FEATURE_OPERATIONS: int
RBD_FEATURE_MIGRATING: int
RBD_FEATURE_NON_PRIMARY: int
RBD_FEATURES_INCOMPATIBLE: int
RBD_FEATURES_RW_INCOMPATIBLE: int
RBD_FEATURES_MUTABLE: int
RBD_FEATURES_SINGLE_CLIENT: int
RBD_FEATURES_ALL: int

RBD_OPERATION_FEATURE_CLONE_PARENT: int
RBD_OPERATION_FEATURE_CLONE_CHILD: int
RBD_OPERATION_FEATURE_GROUP: int
RBD_OPERATION_FEATURE_SNAP_TRASH: int

RBD_FLAG_OBJECT_MAP_INVALID: int
RBD_FLAG_FAST_DIFF_INVALID: int

RBD_IMAGE_OPTION_FORMAT: int
RBD_IMAGE_OPTION_FEATURES: int
RBD_IMAGE_OPTION_ORDER: int
RBD_IMAGE_OPTION_STRIPE_UNIT: int
RBD_IMAGE_OPTION_STRIPE_COUNT: int
RBD_IMAGE_OPTION_DATA_POOL: int

RBD_LOCK_MODE_EXCLUSIVE: int
RBD_LOCK_MODE_SHARED: int

# --- exceptions ----------------------------------------------------------------------------------
# Hierarchy copied from the real __mro__: Error is a bare Exception subclass WITHOUT ``errno``;
# OSError and every class below it carry ``errno`` (positive errno, or None when raised without
# one, e.g. InvalidArgument("image is closed")).  Mapping from librbd return codes:
#   EPERM PermissionError, ENOENT ImageNotFound (also for missing snapshots and namespaces),
#   EIO IOError, ENOSPC NoSpace, EEXIST ImageExists (also for existing snapshots and
#   namespaces), EINVAL InvalidArgument, EROFS ReadOnlyImage, EBUSY ImageBusy, ENOTEMPTY
#   ImageHasSnapshots, ENOSYS FunctionNotSupported, EDOM ArgumentOutOfRange, ESHUTDOWN
#   ConnectionShutdown, ETIMEDOUT Timeout, EDQUOT DiskQuotaExceeded, EOPNOTSUPP
#   OperationNotSupported, ECANCELED OperationCanceled; anything else: plain OSError.
# Missing image/pool *metadata* keys raise the builtin KeyError, not an rbd exception.

class Error(Exception): ...

class OSError(Error):
    errno: int | None
    def __init__(self, message: str, errno: int | None = None) -> None: ...

class PermissionError(OSError): ...
class ImageNotFound(OSError): ...
class ObjectNotFound(OSError): ...
class ImageExists(OSError): ...
class ObjectExists(OSError): ...
class IOError(OSError): ...
class NoSpace(OSError): ...
class IncompleteWriteError(OSError): ...
class InvalidArgument(OSError): ...
class LogicError(OSError): ...
class ReadOnlyImage(OSError): ...
class ImageBusy(OSError): ...
class ImageHasSnapshots(OSError): ...
class FunctionNotSupported(OSError): ...
class ArgumentOutOfRange(OSError): ...
class ConnectionShutdown(OSError): ...
class Timeout(OSError): ...
class DiskQuotaExceeded(OSError): ...
class OperationNotSupported(OSError): ...
class OperationCanceled(OSError): ...

# --- dict shapes (stub-only names) ---------------------------------------------------------------

class ImageListEntry(TypedDict):
    """An item of RBD.list2(): Pacific yields exactly these two keys."""

    id: str
    name: str

class MirrorImageInfo(TypedDict):
    """Image.mirror_image_get_info() / aio_mirror_image_get_info().

    For an image with mirroring disabled: {'global_id': '', 'state': RBD_MIRROR_IMAGE_DISABLED,
    'primary': False}.
    """

    global_id: str
    state: int
    primary: bool

class MirrorImageInfoListEntry(TypedDict):
    """The info half of an RBD.mirror_image_info_list() item: MirrorImageInfo plus 'mode'."""

    mode: int
    global_id: str
    state: int
    primary: bool

class MirrorImageStatusListInfo(TypedDict):
    """The 'info' of a mirror_image_status_list() entry: no 'primary' key there."""

    global_id: str
    state: int

class MirrorImageSiteStatus(TypedDict):
    mirror_uuid: str
    state: int
    description: str
    last_update: datetime
    up: bool

class MirrorImageStatus(TypedDict):
    """Image.mirror_image_get_status()."""

    name: str
    id: str
    info: MirrorImageInfo
    state: int
    description: str
    last_update: datetime
    up: bool
    remote_statuses: list[MirrorImageSiteStatus]

class MirrorImageStatusListEntry(TypedDict):
    """An item of RBD.mirror_image_status_list()."""

    name: str
    id: str
    info: MirrorImageStatusListInfo
    state: int
    description: str
    last_update: datetime
    up: bool
    remote_statuses: list[MirrorImageSiteStatus]

class MirrorPeer(TypedDict):
    uuid: str
    direction: int
    site_name: str
    cluster_name: str
    mirror_uuid: str
    client_name: str

class SnapGroupNamespace(TypedDict):
    pool: int
    name: str
    snap_name: str

class SnapTrashNamespace(TypedDict):
    original_name: str

class SnapMirrorNamespace(TypedDict):
    state: int
    mirror_peer_uuids: list[str]
    complete: bool
    primary_mirror_uuid: str
    primary_snap_id: int
    last_copied_object_number: int

class SnapInfo(TypedDict):
    """An item of Image.list_snaps(); at most one of group/trash/mirror, per 'namespace'."""

    id: int
    size: int
    name: str
    namespace: int
    group: NotRequired[SnapGroupNamespace]
    trash: NotRequired[SnapTrashNamespace]
    mirror: NotRequired[SnapMirrorNamespace]

class ImageStat(TypedDict):
    size: int
    obj_size: int
    num_objs: int
    order: int
    block_name_prefix: str
    parent_pool: int
    parent_name: bytes  # deprecated field; Pacific returns it as bytes

# --- iterators (iterables: they have __iter__ but no __next__) -----------------------------------

class ImageIterator:
    def __iter__(self) -> Iterator[ImageListEntry]: ...

class SnapIterator:
    def __iter__(self) -> Iterator[SnapInfo]: ...

class MirrorPeerIterator:
    def __iter__(self) -> Iterator[MirrorPeer]: ...

class MirrorImageInfoIterator:
    # (image_id, info)
    def __iter__(self) -> Iterator[tuple[str, MirrorImageInfoListEntry]]: ...

class MirrorImageStatusIterator:
    def __iter__(self) -> Iterator[MirrorImageStatusListEntry]: ...

class MirrorImageInstanceIdIterator:
    # (image_id, instance_id)
    def __iter__(self) -> Iterator[tuple[str, str]]: ...

class PoolMetadataIterator:
    def __iter__(self) -> Iterator[tuple[str, str]]: ...

class MetadataIterator:
    def __iter__(self) -> Iterator[tuple[str, str]]: ...

# --- async ---------------------------------------------------------------------------------------

class Completion:
    def is_complete(self) -> bool: ...
    # Waits for the callback too, and re-raises any exception the callback raised.
    def wait_for_complete_and_cb(self) -> None: ...
    # 0 (or a positive count) on success, -errno on failure.
    def get_return_value(self) -> int: ...

# --- RBD -----------------------------------------------------------------------------------------

class RBD:
    # ``list`` is shadowed by RBD.list inside this class body, hence ``builtins.list``.
    def version(self) -> tuple[int, int, int]: ...
    def create(
        self,
        ioctx: Ioctx,
        name: str,
        size: int,
        order: int | None = None,
        old_format: bool = False,
        features: int | None = None,
        stripe_unit: int | None = None,
        stripe_count: int | None = None,
        data_pool: str | None = None,
    ) -> None: ...
    # on_progress(offset, total) -> int (0 to continue).
    def remove(
        self, ioctx: Ioctx, name: str, on_progress: Callable[[int, int], int] | None = None
    ) -> None: ...
    def rename(self, ioctx: Ioctx, src: str, dest: str) -> None: ...
    def trash_move(self, ioctx: Ioctx, name: str, delay: int = 0) -> None: ...
    def list(self, ioctx: Ioctx) -> builtins.list[str]: ...
    def list2(self, ioctx: Ioctx) -> ImageIterator: ...
    def pool_init(self, ioctx: Ioctx, force: bool) -> None: ...
    # Namespaces: create raises ImageExists if present, remove ImageNotFound if absent.
    def namespace_create(self, ioctx: Ioctx, name: str) -> None: ...
    def namespace_remove(self, ioctx: Ioctx, name: str) -> None: ...
    def namespace_exists(self, ioctx: Ioctx, name: str) -> bool: ...
    def namespace_list(self, ioctx: Ioctx) -> builtins.list[str]: ...
    # Mirroring.  mirror_mode_get() is per namespace (the ioctx's); it returns
    # RBD_MIRROR_MODE_DISABLED, not an error, for non-RBD pools and missing namespaces.
    def mirror_mode_get(self, ioctx: Ioctx) -> int: ...
    def mirror_mode_set(self, ioctx: Ioctx, mirror_mode: int) -> None: ...
    def mirror_uuid_get(self, ioctx: Ioctx) -> str: ...
    def mirror_site_name_get(self, rados: Rados) -> str: ...
    def mirror_site_name_set(self, rados: Rados, site_name: str) -> None: ...
    def mirror_peer_bootstrap_create(self, ioctx: Ioctx) -> str: ...
    def mirror_peer_bootstrap_import(self, ioctx: Ioctx, direction: int, token: str) -> None: ...
    def mirror_peer_add(
        self, ioctx: Ioctx, site_name: str, client_name: str, direction: int = 2
    ) -> str: ...
    def mirror_peer_remove(self, ioctx: Ioctx, uuid: str) -> None: ...
    def mirror_peer_list(self, ioctx: Ioctx) -> MirrorPeerIterator: ...
    def mirror_peer_set_client(self, ioctx: Ioctx, uuid: str, client_name: str) -> None: ...
    def mirror_peer_set_name(self, ioctx: Ioctx, uuid: str, site_name: str) -> None: ...
    def mirror_peer_get_attributes(self, ioctx: Ioctx, uuid: str) -> dict[str, str]: ...
    def mirror_peer_set_attributes(
        self, ioctx: Ioctx, uuid: str, attributes: dict[str, str]
    ) -> None: ...
    # Images with mirroring enabled (any mode, or only mode_filter), as (image_id, info).
    def mirror_image_info_list(
        self, ioctx: Ioctx, mode_filter: int | None = None
    ) -> MirrorImageInfoIterator: ...
    def mirror_image_status_list(self, ioctx: Ioctx) -> MirrorImageStatusIterator: ...
    # [(MIRROR_IMAGE_STATUS_STATE_*, count), ...]
    def mirror_image_status_summary(self, ioctx: Ioctx) -> builtins.list[tuple[int, int]]: ...
    def mirror_image_instance_id_list(self, ioctx: Ioctx) -> MirrorImageInstanceIdIterator: ...
    # pool_metadata_get / pool_metadata_remove raise KeyError for a missing key.
    def pool_metadata_get(self, ioctx: Ioctx, key: str) -> str: ...
    def pool_metadata_set(self, ioctx: Ioctx, key: str, value: str) -> None: ...
    def pool_metadata_remove(self, ioctx: Ioctx, key: str) -> None: ...
    def pool_metadata_list(self, ioctx: Ioctx) -> PoolMetadataIterator: ...
    def features_to_string(self, features: int) -> str: ...
    def features_from_string(self, str_features: str) -> int: ...
    # oncomplete(completion, image) runs on a librbd thread and ALWAYS receives an Image; when
    # completion.get_return_value() < 0 (e.g. -ENOENT) that Image is closed and unusable.
    # Give exactly one of name / image_id (InvalidArgument otherwise).
    def aio_open_image(
        self,
        oncomplete: Callable[[Completion, Image], object],
        ioctx: Ioctx,
        name: str | None = None,
        snapshot: str | None = None,
        read_only: bool = False,
        image_id: str | None = None,
    ) -> Completion: ...

# --- Image ---------------------------------------------------------------------------------------

class Image:
    # Give exactly one of name / image_id, else InvalidArgument (with errno None); a missing
    # image raises ImageNotFound.  Methods on a closed Image raise InvalidArgument (errno None).
    def __init__(
        self,
        ioctx: Ioctx,
        name: str | None = None,
        snapshot: str | None = None,
        read_only: bool = False,
        image_id: str | None = None,
    ) -> None: ...
    def __enter__(self) -> Self: ...
    # Closes the image; returns False.
    def __exit__(self, type_: object, value: object, traceback: object) -> Literal[False]: ...
    def require_not_closed(self) -> None: ...
    # Idempotent.
    def close(self) -> None: ...
    # oncomplete(completion): no second argument.
    def aio_close(self, oncomplete: Callable[[Completion], object]) -> Completion: ...
    def get_name(self) -> str: ...
    def id(self) -> str: ...
    def block_name_prefix(self) -> str: ...
    def data_pool_id(self) -> int: ...
    def stat(self) -> ImageStat: ...
    def size(self) -> int: ...
    def resize(self, size: int, allow_shrink: bool = True) -> None: ...
    def features(self) -> int: ...
    def update_features(self, features: int, enabled: bool) -> None: ...
    def op_features(self) -> int: ...
    def flags(self) -> int: ...
    def old_format(self) -> bool: ...
    def is_exclusive_lock_owner(self) -> bool: ...
    def create_timestamp(self) -> datetime: ...
    def access_timestamp(self) -> datetime: ...
    def modify_timestamp(self) -> datetime: ...
    def read(self, offset: int, length: int, fadvise_flags: int = 0) -> bytes: ...
    def write(self, data: bytes, offset: int, fadvise_flags: int = 0) -> int: ...
    def flush(self) -> None: ...

    # Snapshots.  A missing snapshot raises ImageNotFound, a duplicate name ImageExists.
    def list_snaps(self) -> SnapIterator: ...
    def create_snap(self, name: str, flags: int = 0) -> None: ...
    def rename_snap(self, srcname: str, dstname: str) -> None: ...
    def remove_snap(self, name: str) -> None: ...
    def remove_snap2(self, name: str, flags: int) -> None: ...
    def remove_snap_by_id(self, snap_id: int) -> None: ...
    def rollback_to_snap(self, name: str) -> None: ...
    def protect_snap(self, name: str) -> None: ...
    def unprotect_snap(self, name: str) -> None: ...
    def is_protected_snap(self, name: str) -> bool: ...
    def snap_exists(self, name: str) -> bool: ...
    def get_snap_limit(self) -> int: ...
    def set_snap_limit(self, limit: int) -> None: ...
    def remove_snap_limit(self) -> None: ...
    # Naive datetime (UTC wall clock).
    def get_snap_timestamp(self, snap_id: int) -> datetime: ...
    def set_snap(self, name: str | None) -> None: ...
    def set_snap_by_id(self, snap_id: int | None) -> None: ...
    def snap_get_name(self, snap_id: int) -> str: ...
    def snap_get_id(self, snap_name: str) -> int: ...
    def snap_get_namespace_type(self, snap_id: int) -> int: ...
    def snap_get_group_namespace(self, snap_id: int) -> SnapGroupNamespace: ...
    def snap_get_trash_namespace(self, snap_id: int) -> SnapTrashNamespace: ...
    def snap_get_mirror_namespace(self, snap_id: int) -> SnapMirrorNamespace: ...

    # Mirroring.  NB: mirror_image_enable() defaults to JOURNAL mode.
    def mirror_image_enable(self, mode: int = 0) -> None: ...
    def mirror_image_disable(self, force: bool) -> None: ...
    def mirror_image_promote(self, force: bool) -> None: ...
    def mirror_image_demote(self) -> None: ...
    def mirror_image_resync(self) -> None: ...
    # Returns the new snapshot id.  InvalidArgument if the image is not in snapshot mirror
    # mode or is not primary.
    def mirror_image_create_snapshot(self, flags: int = 0) -> int: ...
    # Works (state DISABLED) on images with mirroring disabled.
    def mirror_image_get_info(self) -> MirrorImageInfo: ...
    # Returns RBD_MIRROR_IMAGE_MODE_JOURNAL (0) for images with mirroring disabled.
    def mirror_image_get_mode(self) -> int: ...
    def mirror_image_get_status(self) -> MirrorImageStatus: ...
    def mirror_image_get_instance_id(self) -> str: ...
    # Async variants: oncomplete(completion, result) runs on a librbd thread; result is None
    # exactly when completion.get_return_value() < 0.  Note the argument order of
    # aio_mirror_image_create_snapshot: flags first, then the callback.
    def aio_mirror_image_create_snapshot(
        self, flags: int, oncomplete: Callable[[Completion, int | None], object]
    ) -> Completion: ...
    def aio_mirror_image_get_info(
        self, oncomplete: Callable[[Completion, MirrorImageInfo | None], object]
    ) -> Completion: ...
    def aio_mirror_image_get_mode(
        self, oncomplete: Callable[[Completion, int | None], object]
    ) -> Completion: ...

    # Image metadata; metadata_get / metadata_remove raise KeyError for a missing key.
    def metadata_get(self, key: str) -> str: ...
    def metadata_set(self, key: str, value: str) -> None: ...
    def metadata_remove(self, key: str) -> None: ...
    def metadata_list(self) -> MetadataIterator: ...
