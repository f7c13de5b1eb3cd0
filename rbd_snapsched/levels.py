"""Levels (global, pool, namespace, image) and the specs that name them.

A level is named by operators (``rbd/``, ``rbd/ns/``, ``rbd/ns/img``) and stored by id
(``2``, ``2/ns``, ``2/ns/10a2b3c4``), as rbd_support does. Parsing either form is pure;
turning a name into an id, or back, asks a ``Resolver`` (the real one talks to the cluster).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from .errors import InvalidArgument


class ImageSpec(NamedTuple):
    """An image's identity: pool id, namespace ('' = default) and image id."""

    pool_id: int
    namespace: str
    image_id: str


class Level(enum.IntEnum):
    GLOBAL = 0
    POOL = 1
    NAMESPACE = 2
    IMAGE = 3


class PoolInfo(NamedTuple):
    id: int
    name: str
    is_rbd: bool


class ImageInfo(NamedTuple):
    id: str
    name: str
    snapshot_mirrored: bool


class Resolver(Protocol):
    """What level validation needs to know about the cluster.

    Each lookup returns None only when the thing certainly does not exist; any other failure
    (permission, timeout, lost connection) raises, so a stored level is never pruned by mistake.
    """

    def pool_by_name(self, name: str) -> PoolInfo | None: ...

    def pool_by_id(self, pool_id: int) -> PoolInfo | None: ...

    def namespaces(self, pool_id: int) -> Collection[str]:
        """The pool's named namespaces (the default one, '', is implied)."""
        ...

    def namespace_in_image_mode(self, pool_id: int, namespace: str) -> bool: ...

    def image_by_name(self, pool_id: int, namespace: str, name: str) -> ImageInfo | None: ...

    def image_by_id(self, pool_id: int, namespace: str, image_id: str) -> ImageInfo | None: ...


class StaleLevel(LookupError):
    """A stored level whose pool, namespace or image no longer exists."""


# Names: '', 'rbd/', 'rbd//', 'rbd/ns/', 'rbd/img', 'rbd//img', 'rbd/ns/img' ('$' lets a
# trailing newline through, as upstream's pattern does).
_NAME_RE = re.compile(r"^(?:([^/]+)/(?:(?:([^/]*)/|)([^/@]+)?)?)?$")
# Ids: '', '2', '2/', '2/ns', '2//imgid', '2/ns/imgid'.
_ID_RE = re.compile(r"^(?:(\d+)(?:/([^/]*)(?:/([^/@]+))?)?)?$")


@dataclass(frozen=True)
class LevelSpec:
    """A resolved level. Equality and hashing go by id; ``name`` is for display.

    ``namespace`` is None above namespace level; '' is the default namespace.
    """

    pool_id: int | None
    namespace: str | None
    image_id: str | None
    name: str = field(compare=False)

    @classmethod
    def global_level(cls) -> LevelSpec:
        return cls(None, None, None, "")

    @classmethod
    def for_pool(cls, pool: PoolInfo, namespace: str | None = None) -> LevelSpec:
        if namespace is None:
            return cls(pool.id, None, None, f"{pool.name}/")
        return cls(pool.id, namespace, None, f"{pool.name}/{namespace}/")

    @classmethod
    def for_image(cls, pool_name: str, image: ImageSpec, image_name: str) -> LevelSpec:
        name = _image_name(pool_name, image.namespace, image_name)
        return cls(image.pool_id, image.namespace, image.image_id, name)

    @property
    def level(self) -> Level:
        if self.pool_id is None:
            return Level.GLOBAL
        if self.namespace is None:
            return Level.POOL
        if self.image_id is None:
            return Level.NAMESPACE
        return Level.IMAGE

    @property
    def id(self) -> str:
        """The stored form: '', '2', '2/', '2/ns', '2//imgid', '2/ns/imgid'."""
        if self.pool_id is None:
            return ""
        if self.namespace is None:
            return str(self.pool_id)
        if self.image_id is None:
            return f"{self.pool_id}/{self.namespace}"
        return f"{self.pool_id}/{self.namespace}/{self.image_id}"

    def is_global(self) -> bool:
        return self.pool_id is None

    def parent(self) -> LevelSpec | None:
        """The next less specific level, by id (its name is not known here and left empty)."""
        level = self.level
        if level is Level.GLOBAL:
            return None
        if level is Level.POOL:
            return LevelSpec.global_level()
        if level is Level.NAMESPACE:
            return LevelSpec(self.pool_id, None, None, "")
        return LevelSpec(self.pool_id, self.namespace, None, "")

    def ancestors(self) -> list[LevelSpec]:
        """Less specific levels, nearest first, ending with the global level."""
        chain: list[LevelSpec] = []
        node = self.parent()
        while node is not None:
            chain.append(node)
            node = node.parent()
        return chain

    def is_child_of(self, other: LevelSpec) -> bool:
        """Strict descendant of ``other``: ``other`` is one of ``ancestors()``, found without
        building them (``list`` asks this of every stored level)."""
        level = self.level
        if level is Level.GLOBAL:
            return False
        target = (other.pool_id, other.namespace, other.image_id)
        if target == (None, None, None):
            return True
        if level is Level.POOL:
            return False
        if target == (self.pool_id, None, None):
            return True
        return level is Level.IMAGE and target == (self.pool_id, self.namespace, None)

    def intersects(self, other: LevelSpec) -> bool:
        """One level contains the other (or they are equal)."""
        return self == other or self.is_child_of(other) or other.is_child_of(self)

    def matches(self, image: ImageSpec) -> bool:
        """The ``status`` filter, as upstream: an empty namespace matches every namespace."""
        if self.pool_id is not None and self.pool_id != image.pool_id:
            return False
        if self.namespace and self.namespace != image.namespace:
            return False
        return not (self.image_id is not None and self.image_id != image.image_id)


def _image_name(pool_name: str, namespace: str, image_name: str) -> str:
    if namespace:
        return f"{pool_name}/{namespace}/{image_name}"
    return f"{pool_name}/{image_name}"


class LevelName(NamedTuple):
    """A parsed, unresolved level name."""

    pool: str | None
    namespace: str | None
    image: str | None

    @classmethod
    def parse(cls, text: str) -> LevelName:
        match = _NAME_RE.match(text)
        if not match:
            raise InvalidArgument(f"failed to parse {text}")
        pool, namespace, image = match.groups()
        if pool is not None and image is not None and namespace is None:
            namespace = ""
        return cls(pool, namespace, image)


def caps_args(name: LevelName) -> dict[str, str]:
    """What ``is_authorized`` must allow for a level name, from the name alone (no lookup).

    {} (unrestricted caps) for the global level; the pool for a pool level; the pool and
    namespace ('' = default) for namespace and image levels. Asked before the level is
    resolved, so a client learns nothing about pools, namespaces or images outside its caps.
    """
    if name.pool is None:
        return {}
    if name.namespace is None:
        return {"pool": name.pool}
    return {"pool": name.pool, "namespace": name.namespace}


def resolve_name(text: str, resolver: Resolver, *, mirror_checks: bool = True) -> LevelSpec:
    """Validate an operator's level name and resolve it to a level, upstream's checks in order.

    ``mirror_checks`` adds the mirror-snapshot scheduler's rules: a namespace must be in mirror
    image mode and an image in snapshot mirror mode. Every failure is ``InvalidArgument``.
    """
    name = LevelName.parse(text)
    if name.pool is None:
        return LevelSpec.global_level()
    pool = resolver.pool_by_name(name.pool)
    if pool is None:
        raise InvalidArgument(f"pool {name.pool} does not exist")
    if not pool.is_rbd:
        raise InvalidArgument(f"{name.pool} is not an RBD pool")
    if name.namespace is None:
        return LevelSpec.for_pool(pool)
    if name.namespace:
        if name.namespace not in resolver.namespaces(pool.id):
            raise InvalidArgument(f"namespace {name.namespace} does not exist")
        if mirror_checks and not resolver.namespace_in_image_mode(pool.id, name.namespace):
            raise InvalidArgument(f"namespace {name.namespace} is not in mirror image mode")
    if name.image is None:
        return LevelSpec.for_pool(pool, name.namespace)
    image = resolver.image_by_name(pool.id, name.namespace, name.image)
    if image is None:
        raise InvalidArgument(f"image {name.image} does not exist")
    if mirror_checks and not image.snapshot_mirrored:
        raise InvalidArgument(f"image {name.image} is not in snapshot mirror mode")
    return LevelSpec.for_image(pool.name, ImageSpec(pool.id, name.namespace, image.id), image.name)


def parse_id(level_id: str) -> LevelSpec:
    """Parse a stored level id (no I/O). The result's ``name`` is empty until resolved."""
    match = _ID_RE.match(level_id)
    if not match or level_id.endswith("\n"):
        raise InvalidArgument(f"failed to parse level id {level_id!r}")
    pool, namespace, image_id = match.groups()
    if pool is None:
        return LevelSpec.global_level()
    if image_id is not None and namespace is None:
        namespace = ""
    return LevelSpec(int(pool), namespace, image_id, "")


def resolve_id(level_id: str, resolver: Resolver) -> LevelSpec:
    """Resolve a stored level id to a named level.

    Raises ``StaleLevel`` if its pool, namespace or image no longer exists (the caller prunes
    it) and ``InvalidArgument`` if the id does not parse (the caller logs and keeps it). Mirror
    mode is not checked: an image whose mirroring is off keeps its schedule.
    """
    spec = parse_id(level_id)
    if spec.pool_id is None:
        return spec
    pool = resolver.pool_by_id(spec.pool_id)
    if pool is None:
        raise StaleLevel(f"pool {spec.pool_id} does not exist")
    if spec.namespace is None:
        return LevelSpec.for_pool(pool)
    if spec.namespace and spec.namespace not in resolver.namespaces(pool.id):
        raise StaleLevel(f"namespace {spec.namespace} does not exist in pool {pool.name}")
    if spec.image_id is None:
        return LevelSpec.for_pool(pool, spec.namespace)
    image = resolver.image_by_id(pool.id, spec.namespace, spec.image_id)
    if image is None:
        raise StaleLevel(f"image {spec.image_id} does not exist in {pool.name}/{spec.namespace}")
    return LevelSpec.for_image(pool.name, ImageSpec(pool.id, spec.namespace, image.id), image.name)
