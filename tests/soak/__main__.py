"""``python3 -m tests.soak``: the seeded soak, ours beside stock rbd_support (``--help``)."""

from __future__ import annotations

import argparse
import secrets
import shutil
import signal
import sys
from collections.abc import Sequence

from tests.cephcluster import MODULE_DIR
from tests.releases import RELEASES, host_release
from tests.soak.driver import Settings, run, say
from tests.soak.report import Bounds, format_report, violations
from tests.soak.script import format_script, generate, make_layout
from tests.soak.sources import describe, fingerprint


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m tests.soak",
        description="Boot a cluster with rbd_snapsched and one with stock rbd_support, run one "
        "seeded random script of faults and changes against both, check invariants from the "
        "clusters' own data, print both side by side. Exit 1 if any invariant of ours failed.",
    )
    parser.add_argument("--release", choices=RELEASES, help="default: the host's")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed", type=int, help="default: random (printed first)")
    parser.add_argument("--no-upstream", action="store_true", help="ours only")
    parser.add_argument("--fault-every", type=float, default=240.0, help="seconds, on average")
    parser.add_argument("--ops-per-minute", type=float, default=3.0)
    parser.add_argument("--slot-bound", type=float, default=Bounds.slot, help="seconds")
    parser.add_argument("--status-bound", type=float, default=Bounds.status, help="seconds")
    parser.add_argument("--keep", action="store_true", help="leave the clusters running")
    parser.add_argument(
        "--trim",
        action=argparse.BooleanOptionalAction,
        default=shutil.which("gdb") is not None,
        help="judge RSS after malloc_trim(0) in the active mgr, through gdb, each minute "
        "(default: on when gdb is installed)",
    )
    args = parser.parse_args(argv)
    # SIGTERM, and SIGINT even when a shell started the run in the background (which ignores
    # it there): the clusters are torn down (``driver.run``'s finally), never left running.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupted)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    release = args.release or host_release().name
    rerun = f"python3 -m tests.soak --seed {seed} --minutes {args.minutes:g} --images {args.images}"
    rerun += f" --release {release}" + (" --no-upstream" if args.no_upstream else "")
    rerun += f" --fault-every {args.fault_every:g} --ops-per-minute {args.ops_per_minute:g}"
    rerun += "" if args.trim else " --no-trim"
    say(f"soak seed {seed} (rerun: {rerun})")
    if args.trim:
        say("RSS judged after malloc_trim(0) in the active mgr each minute (gdb)")
    sources = fingerprint(MODULE_DIR)
    say(f"module {MODULE_DIR}: sources {sources} ({describe(MODULE_DIR)})")
    layout = make_layout(args.images)
    events = generate(
        seed,
        args.minutes,
        layout,
        fault_every=args.fault_every,
        ops_per_minute=args.ops_per_minute,
    )
    print("\n".join(["script:", *format_script(events)]), flush=True)
    bounds = Bounds(slot=args.slot_bound, status=args.status_bound)
    settings = Settings(
        minutes=args.minutes,
        release=release,
        upstream=not args.no_upstream,
        bounds=bounds,
        keep=args.keep,
        trim=args.trim,
    )
    try:
        results = run(layout, events, settings)
    except KeyboardInterrupt as e:
        say(f"soak seed {seed}: interrupted ({e or 'SIGINT'}); the clusters were torn down")
        return 130
    say(f"soak seed {seed}, {args.minutes:g} minutes, {args.images} images, {release}")
    print(format_report(results, bounds), flush=True)
    failed = violations(results[0], bounds)
    if fingerprint(MODULE_DIR) != sources:  # a mgr started meanwhile may have loaded either
        failed.append(f"VOID: the sources in {MODULE_DIR} changed during the run")
        say(
            f"VOID: the sources in {MODULE_DIR} changed during the run: rerun it from a "
            "checkout nobody edits meanwhile (a git worktree)"
        )
    verdict = (
        f"FAILED: {len(failed)} invariant(s) of ours" if failed else "ours passed every invariant"
    )
    say(f"soak seed {seed}: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
