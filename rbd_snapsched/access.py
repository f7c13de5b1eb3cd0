"""What the caller's caps let it change and see: the checks every command makes.      pure

The mgr's ``is_authorized(args)`` answers for the caller of the command being handled: ``{}``
asks for unrestricted caps, ``{"pool": P}`` and ``{"pool": P, "namespace": N}`` for a pool or a
namespace (``""``: the default one). A restricted client (``allow module rbd_snapsched with
pool=P``) changes only levels inside its caps and sees only those levels and images.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .errors import NotAuthorized
from .levels import ImageSpec, LevelName, LevelSpec, caps_args

IsAuthorized = Callable[[dict[str, str]], bool]


def authorize(is_authorized: IsAuthorized, name: LevelName) -> None:
    """EACCES unless the caps allow the level, judged from its name alone (no lookup), so a
    refused client learns nothing about what exists outside its caps."""
    if not is_authorized(caps_args(name)):
        raise NotAuthorized(f"not authorized on pool={name.pool}, namespace={name.namespace}")


def level_visible(is_authorized: IsAuthorized) -> Callable[[LevelSpec], bool]:
    """Which levels ``list`` shows the caller."""

    def visible(level: LevelSpec) -> bool:
        if level.pool_id is None:
            return is_authorized({})
        args = {"pool": level.name.split("/", 1)[0]}
        if level.namespace is not None:
            args["namespace"] = level.namespace
        return is_authorized(args)

    return visible


def every_image(image: ImageSpec) -> bool:
    """What ``image_visible`` answers for unrestricted caps: every image (a reply may take a
    shortcut when it is this very function)."""
    return True


def image_visible(
    is_authorized: IsAuthorized, pool_names: Callable[[], Mapping[int, str]]
) -> Callable[[ImageSpec], bool]:
    """Which images ``status``, ``report`` and ``explain`` show the caller: everything with
    unrestricted caps, else those of the pools and namespaces it may see (asked once each)."""
    if is_authorized({}):
        return every_image
    names = pool_names()
    cache: dict[tuple[int, str], bool] = {}

    def visible(image: ImageSpec) -> bool:
        key = (image.pool_id, image.namespace)
        if key not in cache:
            pool = names.get(image.pool_id)
            cache[key] = pool is not None and is_authorized(
                {"pool": pool, "namespace": image.namespace}
            )
        return cache[key]

    return visible
