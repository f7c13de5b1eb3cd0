"""The real cluster behind our protocols: level resolution, image discovery and omap records.

Blocking librados/librbd calls only; snapshot creation is ``rbd_driver.py``'s (aio).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import rados
import rbd

from . import compat
from .compat import image_mirror_mode
from .levels import ImageInfo, ImageSpec, LevelSpec, PoolInfo
from .store import PoolGone

OMAP_PAGE = 128
_LOG = logging.getLogger(__name__)


def is_connection_shutdown(e: BaseException) -> bool:
    """The client was blocklisted or shut down: the handler must be rebuilt."""
    return isinstance(e, (rados.ConnectionShutdown, rbd.ConnectionShutdown))


class Failure(NamedTuple):
    """What a command that raised answers: a negative errno and a message. ``blocklisted``:
    the client is, and the module must rebuild it; ``bug``: ours, for the mgr log."""

    rc: int
    text: str
    blocklisted: bool = False
    bug: bool = False


def command_failure(e: Exception, rebuilding: bool) -> Failure:
    """The answer to a command that raised ``e`` (a ``SnapSchedError`` is answered before).

    ``rebuilding``: the handler the command began with is no longer the live one, so the module
    tore it down under the call (a blocklisting, a fatal error, the mgr stopping) and closed its
    client: whatever that raised (``NotConnected``, a state error, a closed ioctx) is "try
    again", as while the module starts, never an errno a client takes for a verdict."""
    if is_connection_shutdown(e):
        text = f"rbd_snapsched module is recovering from a blocklisting, try again ({e})"
        return Failure(-errno.EAGAIN, text, blocklisted=True)
    if rebuilding:
        return Failure(-errno.EAGAIN, f"rbd_snapsched module is recovering, try again ({e})")
    if isinstance(e, (rados.Error, rbd.Error)):
        code = getattr(e, "errno", None) or errno.EINVAL
        return Failure(-abs(int(code)), str(e))
    return Failure(-errno.EIO, f"internal error in rbd_snapsched: {e}", bug=True)


def client_addrs(addrs: str) -> frozenset[str]:
    """A rados client's addresses (``Rados.get_addrs()``: ``127.0.0.1:0/123``, or a vector
    ``[v2:127.0.0.1:0/123,v1:...]``) as the OSD map's blocklist names them: ``ip:port/nonce``."""
    found = set()
    for part in addrs.strip().strip("[]").split(","):
        part = part.strip()
        kind, sep, rest = part.partition(":")
        if sep and kind in ("v1", "v2", "any"):
            part = rest
        if part:
            found.add(part)
    return frozenset(found)


def mon_election(status: Any) -> tuple[int, list[str]] | None:
    """A mon_status's election epoch and the names of the mons in quorum; None if it does
    not say. ``MgrModule.get("mon_status")`` gives the status as JSON text under ``json``."""
    try:
        if isinstance(status, dict) and isinstance(status.get("json"), str):
            status = json.loads(status["json"])
        epoch = int(status["election_epoch"])
        ranks = set(status.get("quorum", []))
        mons = status.get("monmap", {}).get("mons", [])
        return epoch, [str(m.get("name")) for m in mons if m.get("rank") in ranks]
    except (TypeError, KeyError, ValueError, AttributeError):
        return None


def pool_info(client: rados.Rados, pool_id: int, name: str) -> PoolInfo | None:
    """The pool and whether it carries the rbd application; None if it no longer exists."""
    try:
        with client.open_ioctx2(pool_id) as ioctx:
            return PoolInfo(pool_id, name, "rbd" in ioctx.application_list())
    except rados.ObjectNotFound:
        return None


def list_rbd_pools(client: rados.Rados) -> list[PoolInfo]:
    """The pools that carry the rbd application, from librados' latest OSD map.

    Fresher than the mgr's own map, which can lag behind a pool just created or deleted.
    """
    client.wait_for_latest_osdmap()
    pools: list[PoolInfo] = []
    for name in client.list_pools():
        pool_id = client.pool_lookup(name)
        info = None if pool_id is None else pool_info(client, pool_id, name)
        if info is not None and info.is_rbd:
            pools.append(info)
    return pools


def rbd_pools(osd_map: dict[str, Any]) -> list[PoolInfo]:
    """The pools of an OSD map dump (the mgr's ``get("osd_map")``) that carry the rbd app."""
    return [
        PoolInfo(int(p["pool"]), p["pool_name"], True)
        for p in osd_map.get("pools", [])
        if "rbd" in p.get("application_metadata", {})
    ]


class RadosResolver:
    """``levels.Resolver`` over librados/librbd (fresh after ``wait_for_latest_osdmap``)."""

    def __init__(self, client: rados.Rados) -> None:
        self._client = client

    def pool_by_name(self, name: str) -> PoolInfo | None:
        try:
            pool_id = self._client.pool_lookup(name)
        except rados.ObjectNotFound:
            return None
        return None if pool_id is None else pool_info(self._client, pool_id, name)

    def pool_by_id(self, pool_id: int) -> PoolInfo | None:
        try:
            name = self._client.pool_reverse_lookup(pool_id)
        except rados.ObjectNotFound:
            return None
        return None if name is None else pool_info(self._client, pool_id, name)

    def _ioctx(self, pool_id: int, namespace: str = "") -> rados.Ioctx:
        ioctx = self._client.open_ioctx2(pool_id)
        ioctx.set_namespace(namespace)
        return ioctx

    def namespaces(self, pool_id: int) -> Collection[str]:
        with self._ioctx(pool_id) as ioctx:
            return set(rbd.RBD().namespace_list(ioctx))

    def namespace_in_image_mode(self, pool_id: int, namespace: str) -> bool:
        with self._ioctx(pool_id, namespace) as ioctx:
            return rbd.RBD().mirror_mode_get(ioctx) == rbd.RBD_MIRROR_MODE_IMAGE

    def _image(self, pool_id: int, namespace: str, **which: str) -> ImageInfo | None:
        with self._ioctx(pool_id, namespace) as ioctx:
            try:
                with rbd.Image(ioctx, read_only=True, **which) as image:
                    image_id = image.id()
                    name = image.get_name()
                    mode = image_mirror_mode(image)
            except rbd.ImageNotFound:
                return None
        snapshot = mode == rbd.RBD_MIRROR_IMAGE_MODE_SNAPSHOT
        return ImageInfo(image_id, name, snapshot)

    def image_by_name(self, pool_id: int, namespace: str, name: str) -> ImageInfo | None:
        try:
            return self._image(pool_id, namespace, name=name)
        except rbd.OSError as e:
            # A name longer than the OSD's object-name limit (its id object would be
            # "rbd_id.<name>") cannot belong to an image: ENAMETOOLONG means it does not exist.
            if e.errno == errno.ENAMETOOLONG:
                return None
            raise

    def image_by_id(self, pool_id: int, namespace: str, image_id: str) -> ImageInfo | None:
        return self._image(pool_id, namespace, image_id=image_id)


def discover_images(
    client: rados.Rados,
    pool: PoolInfo,
    wanted: Callable[[LevelSpec], bool],
    log: logging.Logger,
) -> dict[ImageSpec, str] | None:
    """Primary, snapshot-mirrored images of ``pool`` in the namespaces ``wanted`` accepts.

    Returns image -> display name (``POOL/IMG`` or ``POOL/NS/IMG``), or None if the pool could
    not be scanned at all. A namespace that fails is logged and skipped; a lost connection
    propagates.
    """
    try:
        ioctx = client.open_ioctx2(pool.id)
    except rados.ObjectNotFound:
        return {}
    found: dict[ImageSpec, str] = {}
    with ioctx:
        try:
            namespaces = ["", *rbd.RBD().namespace_list(ioctx)]
        except Exception as e:
            if is_connection_shutdown(e):
                raise
            log.error("exception when scanning pool %s: %s", pool.name, e)
            return None
        for namespace in namespaces:
            if not wanted(LevelSpec.for_pool(pool, namespace)):
                continue
            try:
                ioctx.set_namespace(namespace)
                primary = {
                    image_id
                    for image_id, info in rbd.RBD().mirror_image_info_list(
                        ioctx, rbd.RBD_MIRROR_IMAGE_MODE_SNAPSHOT
                    )
                    if info["primary"]
                }
                if not primary:
                    continue
                prefix = f"{pool.name}/{namespace}/" if namespace else f"{pool.name}/"
                for entry in rbd.RBD().list2(ioctx):
                    if entry["id"] in primary:
                        image = ImageSpec(pool.id, namespace, entry["id"])
                        found[image] = prefix + entry["name"]
            except Exception as e:
                if is_connection_shutdown(e):
                    raise
                log.error(
                    "exception when scanning pool %s namespace %r: %s", pool.name, namespace, e
                )
    return found


def has_tx_peer(client: rados.Rados, pool_id: int) -> bool:
    """The pool has a mirror peer that snapshots can be sent to (else librbd refuses them)."""
    with client.open_ioctx2(pool_id) as ioctx:
        return any(
            peer.get("direction", rbd.RBD_MIRROR_PEER_DIRECTION_RX_TX)
            != rbd.RBD_MIRROR_PEER_DIRECTION_RX
            for peer in rbd.RBD().mirror_peer_list(ioctx)
        )


class RadosClusterIO:
    """``ports.ClusterIO`` over librados/librbd: what the module's handler reads."""

    def __init__(self, client: rados.Rados, log: logging.Logger = _LOG) -> None:
        self._client = client
        self._log = log

    def rbd_pools(self) -> list[PoolInfo]:
        return list_rbd_pools(self._client)

    def discover(
        self, pool: PoolInfo, wanted: Callable[[LevelSpec], bool]
    ) -> dict[ImageSpec, str] | None:
        return discover_images(self._client, pool, wanted, self._log)

    def has_tx_peer(self, pool_id: int) -> bool:
        try:
            return has_tx_peer(self._client, pool_id)
        except Exception as e:
            if is_connection_shutdown(e):
                raise
            self._log.warning("cannot list mirror peers of pool %s: %s", pool_id, e)
            return True  # unknown: let the snapshot request find out

    def newest_mirror_snapshot(self, image: ImageSpec) -> datetime | None:
        return newest_primary_mirror_snapshot(self._client, image, self._log)


class RadosOmap:
    """``store.OmapBackend``: omap of one object in each pool's default namespace."""

    def __init__(self, client: rados.Rados, oid: str) -> None:
        self._client = client
        self._oid = oid

    def _ioctx(self, pool_id: int) -> rados.Ioctx:
        try:
            return self._client.open_ioctx2(pool_id)
        except rados.ObjectNotFound as e:
            raise PoolGone(f"pool {pool_id} does not exist") from e

    def read(self, pool_id: int) -> dict[str, bytes]:
        records: dict[str, bytes] = {}
        with self._ioctx(pool_id) as ioctx:
            start = ""
            while True:
                with rados.ReadOpCtx() as op:
                    it, _ = ioctx.get_omap_vals(op, start, "", OMAP_PAGE)
                    try:
                        ioctx.operate_read_op(op, self._oid)
                    except rados.ObjectNotFound:
                        return records
                    page = list(it)
                records.update((key, value or b"") for key, value in page)
                if len(page) < OMAP_PAGE:
                    return records
                start = page[-1][0]

    def write(self, pool_id: int, key: str, value: bytes) -> None:
        with self._ioctx(pool_id) as ioctx, rados.WriteOpCtx() as op:
            ioctx.set_omap(op, (key,), (value,))
            ioctx.operate_write_op(op, self._oid)

    def delete(self, pool_id: int, keys: Sequence[str]) -> None:
        with self._ioctx(pool_id) as ioctx, rados.WriteOpCtx() as op:
            ioctx.remove_omap_keys(op, tuple(keys))
            with contextlib.suppress(rados.ObjectNotFound):  # no object: nothing to delete
                ioctx.operate_write_op(op, self._oid)


def newest_mirror_snapshot(image: rbd.Image, *, primary_only: bool = False) -> datetime | None:
    """When the image's newest mirror-namespace snapshot was taken (aware UTC), if any;
    ``primary_only``: only snapshots this image took as primary (not ones received, nor the
    demotion's)."""
    newest: datetime | None = None
    for snap in image.list_snaps():
        if snap.get("namespace") != rbd.RBD_SNAP_NAMESPACE_TYPE_MIRROR:
            continue
        mirror = snap.get("mirror")
        if primary_only and (
            mirror is None or mirror["state"] != rbd.RBD_SNAP_MIRROR_STATE_PRIMARY
        ):
            continue
        taken = compat.utc(image.get_snap_timestamp(snap["id"]))
        newest = taken if newest is None or taken > newest else newest
    return newest


def peer_links(snaps: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Per mirror peer uuid, how many of these snapshots (``Image.list_snaps()`` entries) are
    primary mirror snapshots still linked to it (``requests.CheckPeer``). Only those since the
    image last became primary count: a demoted or non-primary mirror snapshot starts afresh,
    so links left from an earlier term as primary never hold a failed-back image up."""
    links: dict[str, int] = {}
    mirrored = [s for s in snaps if s.get("namespace") == rbd.RBD_SNAP_NAMESPACE_TYPE_MIRROR]
    for snap in sorted(mirrored, key=lambda s: int(s["id"])):
        mirror = snap.get("mirror") or {}
        if mirror.get("state") != rbd.RBD_SNAP_MIRROR_STATE_PRIMARY:
            links.clear()
            continue
        for peer in mirror.get("mirror_peer_uuids") or ():
            links[peer] = links.get(peer, 0) + 1
    return links


def newest_primary_mirror_snapshot(
    client: rados.Rados, image: ImageSpec, log: logging.Logger
) -> datetime | None:
    """When ``image`` last took a primary mirror snapshot; None if never, or if it cannot be
    read (logged; a lost connection propagates). Blocking: opens the image read-only."""
    try:
        with client.open_ioctx2(image.pool_id) as ioctx:
            ioctx.set_namespace(image.namespace)
            with rbd.Image(ioctx, image_id=image.image_id, read_only=True) as handle:
                return newest_mirror_snapshot(handle, primary_only=True)
    except Exception as e:
        if is_connection_shutdown(e):
            raise
        if not isinstance(e, (rbd.ImageNotFound, rados.ObjectNotFound)):
            log.warning("cannot read the mirror snapshots of image %s: %s", image, e)
        return None
