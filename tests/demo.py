"""The main job: boot a throwaway cluster with rbd_snapsched and watch schedules create snapshots.

    python3 -m tests.demo [--slots N] [--teardown]

Installs Ceph if missing (apt, as root), boots one mon/mgr/OSD with the module enabled,
creates a pool with snapshot-mirrored images, schedules them every minute through the real
``rbd`` CLI, then shows each new mirror snapshot as the minute slots pass. The cluster is left
running for you (unless ``--teardown``), with the line that points ``ceph``/``rbd`` at it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone

from tests.cephcluster import Cluster, ClusterError, print_usage

POOL = "demo"
IMAGES = ("demo/vm-disk-1", "demo/vm-disk-2", "demo/tenant-a/db")


def say(msg: str) -> None:
    print(msg, flush=True)


def show(cluster: Cluster, *args: str) -> None:
    say(f"$ {' '.join(args)}")
    out = cluster.run(*args).stdout.rstrip()
    say("\n".join(f"  {line}" for line in out.splitlines()) or "  (nothing)")


def mirror_snapshots(cluster: Cluster, image: str) -> list[str]:
    snaps = json.loads(cluster.run("rbd", "snap", "ls", "--all", "--format", "json", image).stdout)
    return [s["timestamp"] for s in snaps if s.get("namespace", {}).get("type") == "mirror"]


def run_demo(slots: int, teardown: bool) -> None:
    say("Booting a throwaway cluster (one mon, one mgr, one memstore OSD) with rbd_snapsched...")
    began = time.monotonic()
    cluster = Cluster.boot()
    say(f"  up in {time.monotonic() - began:.0f}s at {cluster.root}: {cluster.health()}")
    try:
        say(f"\nCreating pool {POOL!r} (mirror mode image, a tx peer) and snapshot-mirrored images")
        cluster.create_rbd_pool(POOL)
        cluster.run("rbd", "namespace", "create", f"{POOL}/tenant-a")
        cluster.run("rbd", "mirror", "pool", "enable", f"{POOL}/tenant-a", "image")
        for image in IMAGES:
            cluster.run("rbd", "create", "--size", "64M", image)
            cluster.run("rbd", "mirror", "image", "enable", image, "snapshot")
        cluster.run(
            "rbd",
            "create",
            "--size",
            "64M",
            "--image-feature",
            "exclusive-lock,journaling",
            f"{POOL}/journaled",
        )
        cluster.run("rbd", "mirror", "image", "enable", f"{POOL}/journaled", "journal")
        say("  images: " + ", ".join(IMAGES) + f", and {POOL}/journaled (journal mode: skipped)")

        say("\nScheduling through the real rbd CLI (our module answers):")
        show(cluster, "rbd", "mirror", "snapshot", "schedule", "add", "--pool", POOL, "1m")
        show(
            cluster,
            "rbd",
            "mirror",
            "snapshot",
            "schedule",
            "add",
            "--pool",
            POOL,
            "--image",
            "vm-disk-2",
            "1d",
            "14:00-05:00",
        )
        show(cluster, "rbd", "mirror", "snapshot", "schedule", "ls", "--pool", POOL, "-R")
        show(cluster, "rbd", "mirror", "snapshot", "schedule", "status")

        counts = {image: len(mirror_snapshots(cluster, image)) for image in IMAGES}
        for slot in range(1, slots + 1):
            now = datetime.now(timezone.utc)
            wait = 60 - now.second - now.microsecond / 1e6 + 5
            say(f"\nSlot {slot}/{slots}: waiting {wait:.0f}s for the next minute slot (UTC)...")
            time.sleep(wait)
            for image in IMAGES:
                snaps = mirror_snapshots(cluster, image)
                new = len(snaps) - counts[image]
                counts[image] = len(snaps)
                latest = snaps[-1] if snaps else "-"
                say(f"  {image:22} new mirror snapshots: {new}  latest: {latest}")
        say(
            "\n(vm-disk-2 has its own daily schedule, 14:00-05:00 = 19:00 UTC: the most specific "
            "level wins, so it gets no per-minute snapshots.)"
        )
        show(cluster, "rbd", "mirror", "snapshot", "schedule", "status")
    except BaseException:
        say(cluster.log_tails())
        cluster.teardown()
        raise
    if teardown:
        cluster.teardown()
        say("\nCluster stopped and deleted.")
    else:
        print_usage(cluster)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=2, help="minute slots to watch (default 2)")
    parser.add_argument("--teardown", action="store_true", help="stop the cluster at the end")
    args = parser.parse_args(argv)
    try:
        run_demo(args.slots, args.teardown)
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
