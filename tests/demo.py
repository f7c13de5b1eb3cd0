"""The main job: boot a throwaway cluster with rbd_snapsched and watch schedules create snapshots.

    python3 -m tests.demo [--slots N] [--teardown] [--two-sites] [--release R]

Installs Ceph if missing (apt, as root), boots one mon/mgr/OSD with the module enabled,
creates a pool with snapshot-mirrored images, schedules them every minute through the real
``rbd`` CLI, then shows each new mirror snapshot as the minute slots pass. The cluster is left
running for you (unless ``--teardown``), with the line that points ``ceph``/``rbd`` at it.

With ``--two-sites`` it boots two such clusters, site-a and site-b, each with an rbd-mirror
daemon, peers them (``rbd mirror pool peer bootstrap``, two-way), schedules site-a's images every
minute, writes random data before each slot and shows the replica on site-b catching up.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from functools import partial

from tests import twosite
from tests.cephcluster import Cluster, ClusterError, print_usage
from tests.polling import wait_for
from tests.releases import RELEASES
from tests.slots import mirror_snapshots as snapshot_rows
from tests.slots import next_minute, sleep_until

POOL = "demo"
IMAGES = ("demo/vm-disk-1", "demo/vm-disk-2", "demo/tenant-a/db")


def say(msg: str) -> None:
    print(msg, flush=True)


def show(cluster: Cluster, *args: str) -> None:
    say(f"$ {' '.join(args)}")
    out = cluster.run(*args).stdout.rstrip()
    say("\n".join(f"  {line}" for line in out.splitlines()) or "  (nothing)")


def mirror_snapshots(cluster: Cluster, image: str) -> list[str]:
    return [snap["timestamp"] for snap in snapshot_rows(cluster, image)]


def run_demo(slots: int, teardown: bool, release: str | None) -> None:
    say("Booting a throwaway cluster (one mon, one mgr, one memstore OSD) with rbd_snapsched...")
    began = time.monotonic()
    cluster = Cluster.boot(release=release)
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
            wake = next_minute() + 5
            wait = wake - time.time()
            say(f"\nSlot {slot}/{slots}: waiting {wait:.0f}s for the next minute slot (UTC)...")
            sleep_until(wake)
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


TWO_SITE_POOL = "demo"
TWO_SITE_IMAGES = ("demo/vm-disk-1", "demo/vm-disk-2")


def show_at(site: str, cluster: Cluster, *args: str) -> None:
    say(f"[{site}] $ {' '.join(args)}")
    out = cluster.run(*args).stdout.rstrip()
    say("\n".join(f"  {line}" for line in out.splitlines()) or "  (nothing)")


def run_two_site_demo(slots: int, teardown: bool, release: str | None) -> None:
    say(
        "Booting two throwaway sites side by side (each: one mon, one mgr with rbd_snapsched, "
        "one memstore OSD, and an rbd-mirror daemon), peering them..."
    )
    began = time.monotonic()
    sites = twosite.TwoSites.boot(pools=(TWO_SITE_POOL,), release=release)
    a, b = sites.a, sites.b
    say(f"  up in {time.monotonic() - began:.0f}s at {sites.root}")
    try:
        say(
            f"\nPool {TWO_SITE_POOL!r} on both sites, image mirror mode, peered with "
            "`rbd mirror pool peer bootstrap create` on site-a and `... import --direction rx-tx` "
            "on site-b:"
        )
        show_at(twosite.SITE_B, b, "rbd", "mirror", "pool", "info", TWO_SITE_POOL)
        show_at(twosite.SITE_B, b, "rbd", "mirror", "pool", "status", TWO_SITE_POOL, "--verbose")

        say("\nSnapshot-mirrored images on site-a (primary); rbd-mirror on site-b creates replicas")
        for spec in TWO_SITE_IMAGES:
            twosite.create_mirrored_image(a, spec, "32M")
        for spec in TWO_SITE_IMAGES:
            (first,) = twosite.own_snapshots(a, spec)
            wait_for(
                f"site-b to replicate {spec}",
                partial(twosite.has_copy, b, spec, first.id),
                60,
            )
        show_at(twosite.SITE_B, b, "rbd", "ls", "-l", TWO_SITE_POOL)

        say("\nScheduling site-a's pool every minute through the rbd CLI (our module answers):")
        show_at(
            twosite.SITE_A,
            a,
            "rbd",
            "mirror",
            "snapshot",
            "schedule",
            "add",
            "--pool",
            TWO_SITE_POOL,
            "1m",
        )
        show_at(twosite.SITE_A, a, "rbd", "mirror", "snapshot", "schedule", "status")

        for slot_no in range(1, slots + 1):
            for spec in TWO_SITE_IMAGES:
                twosite.write_random(a, spec)
            slot = next_minute(time.time() + 2)
            say(
                f"\nSlot {slot_no}/{slots}: random data written to site-a's images; waiting "
                f"{slot - time.time():.0f}s for the slot at {twosite.hhmmss(slot)} UTC..."
            )
            sleep_until(slot)
            reports = twosite.follow_slot(a, b, TWO_SITE_IMAGES, slot)
            for spec, report in reports.items():
                primary_sum = twosite.export_sha256(a, spec)
                replica_sum = twosite.export_sha256(b, spec)
                say(f"  {report.line(twosite.SITE_A)}")
                status = twosite.mirror_status(b, spec)
                same = "==" if primary_sum == replica_sum else "!= (MISMATCH)"
                say(
                    f"    site-b status: {status.brief()}\n"
                    f"    sha256 site-a image {primary_sum[:16]}… {same} "
                    f"site-b replica {replica_sum[:16]}…"
                )
        say(
            "\n(RPO here: seconds from the slot until the replica holds the slot's data. "
            "rbd-mirror writes `rbd mirror image status` in 30 s batches, so the status "
            "confirms it later.)"
        )
    except BaseException:
        say(sites.log_tails())
        sites.teardown()
        raise
    if teardown:
        sites.teardown()
        say("\nBoth sites stopped and deleted.")
    else:
        twosite.print_usage(sites)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=2, help="minute slots to watch (default 2)")
    parser.add_argument("--teardown", action="store_true", help="stop the cluster at the end")
    parser.add_argument(
        "--release",
        choices=RELEASES,
        help="Ceph release: the host's packages, or a Debian chroot built on first use "
        "(default: the host's)",
    )
    parser.add_argument(
        "--two-sites",
        action="store_true",
        help="two sites with rbd-mirror: show a replica catching up on schedule",
    )
    args = parser.parse_args(argv)
    try:
        if args.two_sites:
            run_two_site_demo(args.slots, args.teardown, args.release)
        else:
            run_demo(args.slots, args.teardown, args.release)
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
