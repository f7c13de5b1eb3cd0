"""Bad input through both CLIs, and ten clients changing one level at once.

``test_bad_input_table`` runs every case of ``CASES`` (unicode and very long names, whitespace,
``..``, control characters, quotes, JSON in arguments, absurd start times, levels of deleted
pools, namespaces and images, a restricted client) through ``rbd mirror snapshot schedule …`` or
``ceph rbd mirror snapshot schedule …``. Each must fail with the recorded exit code and a clear
message, EINVAL, ENOENT or EACCES from the module, or the CLI's own refusal where the CLI
checks the argument before sending it. After each case nothing stored may have changed (our omap
object in every test pool, our global schedule and pause options, byte for byte) and the
scheduler must still answer ``status`` with the known images. At the end a valid schedule
still takes effect and ``snapshot-now`` still takes a mirror snapshot.

Not in the table: an argument with invalid UTF-8 bytes. The ``ceph`` CLI dies on it with a
Python traceback before sending anything, and the ``rbd`` CLI sends it, which crashes ceph-mgr
16.2.15 itself (SIGSEGV in ``PyFormatter::dump_pyobject``, before any module runs: upstream
tracker 74379, ceph/ceph PR 67022), so it would take the session cluster down.

``test_ten_clients_change_one_level_at_once`` checks for lost updates: ten clients, half through
each CLI, add and remove items of one level at the same time, for several rounds; the level's
listing and storage must equal the result of a serial order of their operations.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from rbd_snapsched.pycompat import zip_equal
from tests.cephcluster import Cluster
from tests.cluster.helpers import (
    OUR_OID,
    OUR_OPTION,
    PROMPT,
    RAW,
    SCHED,
    Pools,
    in_parallel,
    make_image,
    make_namespace,
    pool_prefix,
    raw,
    sched,
    status_images,
    wait_until,
)
from tests.runtime_rpc import Remote

pytestmark = pytest.mark.ceph_cluster

RBD_USAGE = 1  # the rbd CLI's exit code for its own usage errors ("too many arguments")
ENOENT, EACCES, EINVAL = 2, 13, 22
EBADMSG = 74  # the rbd CLI's `status` exit code after any mgr error (SPEC-upstream §9.2)
PAUSED_OPTION = "mgr/rbd_snapsched/paused_levels"
LONG = "x" * 3000  # longer than the OSD's object-name limit (2048) once "rbd_id." is added
USER = "badinput_r"


@dataclass(frozen=True)
class Case:
    """One bad input: which CLI, its arguments (``{P}``-style names filled in per run), the
    exit code expected, and a fragment its stderr must contain. ``as_user``: run as the
    restricted client (caps on pool ``{OWN}`` only)."""

    cli: str  # "rbd" or "ceph"
    args: tuple[str, ...]
    exit: int
    message: str
    as_user: bool = False

    def label(self) -> str:
        def shown(arg: str) -> str:
            if len(arg) > 40:
                return f"{arg[:8]}...({len(arg)} chars)"
            return repr(arg) if not arg or not arg.isprintable() or " " in arg else arg

        who = f" (as client.{USER})" if self.as_user else ""
        return f"{self.cli}{who}: {' '.join(shown(a) for a in self.args)}"


def rbd(*args: str, exit: int = EINVAL, message: str, as_user: bool = False) -> Case:
    return Case("rbd", args, exit, message, as_user)


def ceph(*args: str, exit: int = EINVAL, message: str, as_user: bool = False) -> Case:
    return Case("ceph", args, exit, message, as_user)


def denied(cli: str, *args: str, pool: str, namespace: str) -> Case:
    """The restricted client, refused by the module on a level outside its caps."""
    message = f"not authorized on pool={pool}, namespace={namespace}"
    return Case(cli, args, EACCES, message, as_user=True)


# `failed: (22) Invalid argument: ` is what the rbd CLI prints before the module's message;
# `Error EINVAL: ` what the ceph CLI prints. The fragments below are the module's messages (or the
# CLI's own), checked as substrings of stderr; the errno is checked through the exit code and,
# for the rbd CLI, the `(errno)` it prints. Where the rest of a message is Python's own text
# (datetime's range errors differ between Python 3.11 and 3.14), only our part is checked.
CASES: list[Case] = [
    # -- unicode ------------------------------------------------------------------------------
    rbd("add", "-p", "pöol✓", "1h", message="pool pöol✓ does not exist"),
    rbd("add", "-p", "{P}", "--image", "ïmg✓", "1h", message="image ïmg✓ does not exist"),
    rbd("add", "-p", "{P}/ñs", "1h", message="namespace ñs does not exist"),
    rbd("add", "-p", "{P}", "\uff11h", message="Invalid interval (\uff11h)"),  # fullwidth 1
    # The ceph CLI refuses non-ASCII in a CephString itself, before sending.
    ceph("add", "{P}/ïmg", "1h", message="invalid chars"),
    # -- very long names and values -------------------------------------------------------------
    rbd("add", "-p", "{P}", "--image", LONG, "1h", message=f"image {LONG} does not exist"),
    ceph("add", f"{{P}}/{LONG}", "1h", message=f"image {LONG} does not exist"),
    ceph("add", f"{LONG}/", "1h", message=f"pool {LONG} does not exist"),
    ceph("add", f"{{P}}/{LONG}/", "1h", message=f"namespace {LONG} does not exist"),
    rbd("add", "-p", "{P}", "9" * 300 + "d", message="Invalid interval (999"),
    ceph("add", "{P}/", "1h", "9" * 5000, message="Invalid start time 999"),
    # -- whitespace ----------------------------------------------------------------------------
    rbd("add", "-p", " {P}", "1h", message="pool  {P} does not exist"),
    ceph("add", "{P}/ ", "1h", message="image   does not exist"),
    ceph("add", "{P}/", " 1h", message="Invalid interval ( 1h)"),
    rbd("add", "-p", "{P}", "1 h", message="Invalid interval (1 h)"),
    ceph("add", "{P}/", "1h\t", message="Invalid interval (1h\t)"),
    ceph("add", "{P}/", "", message="Invalid interval ()"),
    ceph("add", "{P}/", "1h", "   ", message="Invalid start time    : "),
    rbd("add", "-p", "{P}", "--image", "img\t", "1h", message="image img\t does not exist"),
    # -- `..` ----------------------------------------------------------------------------------
    ceph("add", "../", "1h", message="pool .. does not exist"),
    ceph("add", "{P}/../", "1h", message="namespace .. does not exist"),
    ceph("add", "{P}/../../", "1h", message="failed to parse {P}/../../"),
    rbd("add", "-p", "{P}", "--image", "..", "1h", message="image .. does not exist"),
    rbd("add", "-p", "{P}", "--namespace", "..", "1h", message="namespace .. does not exist"),
    # -- control characters ----------------------------------------------------------------------
    ceph("add", "{P}/\x01", "1h", message="invalid chars"),
    ceph("add", "{P}/", "1h", "12:00\x07", message="invalid chars"),
    ceph("add", "{P}/img\n", "1h", message="image img\n does not exist"),
    ceph("add", "{P}/", "1h\n\n", message="Invalid interval (1h\n\n)"),
    rbd("add", "-p", "{P}", "--image", "im\x1b[2Jg", "1h", message="image im\x1b[2Jg does not"),
    rbd("add", "-p", "{P}", "1h", "12:00\x1b", message="Invalid start time 12:00\x1b: "),
    # -- quotes --------------------------------------------------------------------------------
    ceph("add", "{P}/'img'", "1h", message="image 'img' does not exist"),
    rbd("add", "-p", "{P}", "--image", 'it"s', "1h", message='image it"s does not exist'),
    ceph("add", "{P}/", '"1h"', message='Invalid interval ("1h")'),
    # -- JSON in arguments ------------------------------------------------------------------------
    ceph("add", '{"level_spec": "{P}/"}', "1h", message='pool {"level_spec": "{P} does not'),
    ceph("add", '{P}/{"a": 1}', "1h", message='image {"a": 1} does not exist'),
    rbd(
        "add",
        "-p",
        "{P}",
        '[{"interval": "1m", "start_time": null}]',
        message='Invalid interval ([{"interval": "1m", "start_time": null}])',
    ),
    ceph("add", "{P}/", "1h", '12:00", "interval": "1m', message='Invalid start time 12:00", '),
    # -- absurd start times and intervals ----------------------------------------------------------
    ceph("add", "{P}/", "1h", "9999-12-31T23:59-05:00", message="Invalid start time 9999-12-31"),
    rbd("add", "-p", "{P}", "1h", "0001-01-01T00:00+05:00", message="Invalid start time 0001-"),
    rbd("rm", "-p", "{P}", "1h", "9999-12-31T23:59-05:00", message="Invalid start time 9999-"),
    ceph("add", "{P}/", "1h", "0000-01-01", message="Invalid start time 0000-01-01: "),
    rbd("add", "-p", "{P}", "1h", "99999-01-01", message="Invalid start time 99999-01-01: "),
    rbd("add", "-p", "{P}", "1h", "2020-02-30", message="Invalid start time 2020-02-30: "),
    ceph("add", "{P}/", "1h", "99999999999999999999:00", message="Invalid start time 9999"),
    rbd("add", "-p", "{P}", "1h", "12:00 EST", message="unknown time zone EST"),
    ceph("add", "{P}/", "1h", "1e400", message="Invalid start time 1e400: "),
    ceph("add", "{P}/", "--interval=-1h", message="Invalid interval (-1h)"),
    rbd("add", "-p", "{P}", "--", "-1h", message="Invalid interval (-1h)"),
    rbd("add", "-p", "{P}", "36501d", message="Invalid interval (36501d): must be at most"),
    # -- levels of deleted pools, namespaces and images -----------------------------------------
    rbd("add", "-p", "{GONE}", "1h", message="pool {GONE} does not exist"),
    ceph("remove", "{GONE}/", message="pool {GONE} does not exist"),
    rbd("ls", "-p", "{GONE}", message="pool {GONE} does not exist"),
    ceph("status", "{GONE}/", message="pool {GONE} does not exist"),
    ceph("pause", "{GONE}/", message="pool {GONE} does not exist"),
    rbd("add", "-p", "{P}/gone", "1h", message="namespace gone does not exist"),
    ceph("remove", "{P}/gone/", message="namespace gone does not exist"),
    ceph("snapshot-now", "{P}/gone/", message="namespace gone does not exist"),
    rbd("add", "-p", "{P}", "--image", "goneimg", "1h", message="image goneimg does not exist"),
    ceph("explain", "{P}/goneimg", message="image goneimg does not exist"),
    # -- ENOENT ------------------------------------------------------------------------------
    ceph("resume", "{P}/", exit=ENOENT, message="level {P}/ is not paused"),
    ceph("resume", "{P}/ns1/img", exit=ENOENT, message="level {P}/ns1/img is not paused"),
    # -- a restricted client (caps on {OWN} only): EACCES before anything is looked up ----------
    denied("rbd", "add", "-p", "{P}", "1h", pool="{P}", namespace="None"),
    denied("rbd", "add", "-p", "{P}", "--image", "nosuch", "1h", pool="{P}", namespace=""),
    denied("ceph", "add", "{P}/nons/", "1h", pool="{P}", namespace="nons"),
    denied("ceph", "add", "{GONE}/", "1h", pool="{GONE}", namespace="None"),
    denied("rbd", "add", "1h", pool="None", namespace="None"),
    denied("rbd", "rm", "-p", "{P}", pool="{P}", namespace="None"),
    denied("ceph", "pause", "", pool="None", namespace="None"),
    # ... and its own pool with bad input: EINVAL, nothing stored.
    ceph("add", "{OWN}/", "0m", message="Invalid interval (0m)", as_user=True),
    rbd("add", "-p", "{OWN}", "--image", LONG, "1h", message="image xxx", as_user=True),
    # -- arguments the CLIs refuse themselves ------------------------------------------------------
    rbd("add", "-p", "{P}", "1h", "12:00", "x", exit=RBD_USAGE, message="rbd: too many arguments"),
    ceph("add", "{P}/", "1h", "12:00", "x", message="unused arguments: ['x']"),
    rbd("add", "--image", "{P}/ns1/img/x", "1h", message="rbd: invalid spec '{P}/ns1/img/x'"),
    rbd("add", "-p", "{P}", "--image", "img@snap", "1h", message="rbd: snapshot name specified"),
]  # fmt: skip


@dataclass
class Bed:
    """What the table runs against, made once per release."""

    cluster: Cluster
    names: dict[str, str]  # P, OWN, GONE
    pool_ids: list[int]  # the live test pools: their omap objects are compared
    keyring: Path
    omap: Remote  # a RadosOmap of our object in the release's runtime
    client: Remote  # the release's rados.Rados

    def fill(self, text: str) -> str:
        for key, value in self.names.items():
            text = text.replace("{" + key + "}", value)
        return text

    def run(self, case: Case) -> subprocess.CompletedProcess[str]:
        args = [self.fill(a) for a in case.args]
        who = ["--id", USER, "--keyring", str(self.keyring)] if case.as_user else []
        base = SCHED if case.cli == "rbd" else RAW
        return self.cluster.run(*base, *args, *who, check=False)

    def stored(self) -> dict[str, Any]:
        """Everything the commands store, byte for byte."""
        state: dict[str, Any] = {
            f"omap of pool {pool_id}": self.omap.call("read", pool_id) for pool_id in self.pool_ids
        }
        for option in (OUR_OPTION, PAUSED_OPTION):
            ret, out, err = self.client.call(
                "mon_command",
                json.dumps({"prefix": "config get", "who": "mgr", "key": option}),
                b"",
            )
            state[option] = (ret, out, err)
        return state

    def status(self) -> list[str]:
        """The images the scheduler lists (through librados: cheap enough after every case)."""
        ret, out, err = self.client.call(
            "mgr_command",
            json.dumps({"prefix": "rbd mirror snapshot schedule status", "level_spec": ""}),
            b"",
        )
        assert ret == 0, f"status failed: {ret} {err}"
        return sorted(entry["image"] for entry in json.loads(out)["scheduled_images"])


def _pool_id(cluster: Cluster, name: str) -> int:
    for entry in cluster.ceph_json("osd", "dump")["pools"]:
        if entry["pool_name"] == name:
            return int(entry["pool"])
    raise AssertionError(f"pool {name} not in the OSD map")


@pytest.fixture(scope="module")
def bed(cluster: Cluster) -> Iterator[Bed]:
    pools = Pools(cluster, pool_prefix(__name__, "table"))
    p, own, gone = pools.create("p", "own", "gone")
    keyring = cluster.root / f"{USER}.keyring"  # seen by the release's CLIs
    try:
        in_parallel(
            partial(make_namespace, cluster, p, "ns1"),
            partial(make_namespace, cluster, p, "gone"),
            partial(make_image, cluster, f"{p}/img"),
            partial(make_image, cluster, f"{p}/goneimg"),
            partial(make_image, cluster, f"{own}/img"),
        )
        make_image(cluster, f"{p}/ns1/img")
        sched(cluster, "add", "-p", p, "1h")
        sched(cluster, "add", "-p", p, "--image", "img", "1d", "02:00")
        sched(cluster, "add", "-p", own, "2h")
        # The deleted levels: a pool, a namespace and an image that existed.
        in_parallel(
            partial(pools.delete, gone),
            partial(cluster.run, "rbd", "namespace", "remove", f"{p}/gone"),
            partial(cluster.run, "rbd", "rm", f"{p}/goneimg"),
        )
        cluster.run(
            "ceph", "auth", "get-or-create", f"client.{USER}", "mon", "profile rbd",
            "osd", f"profile rbd pool={own}",
            "mgr", f"profile rbd pool={own}, allow module rbd_snapsched with pool={own} rw",
            "-o", str(keyring),
        )  # fmt: skip
        with (
            Remote(cluster, "rbd_snapsched.cluster:RadosOmap", [OUR_OID]) as omap,
            Remote(cluster) as client,
        ):
            yield Bed(
                cluster,
                {"P": p, "OWN": own, "GONE": gone},
                [_pool_id(cluster, p), _pool_id(cluster, own)],
                keyring,
                omap,
                client,
            )
    finally:
        cluster.run("ceph", "auth", "rm", f"client.{USER}", check=False)
        pools.delete_all()


def _check(bed: Bed, case: Case, proc: subprocess.CompletedProcess[str]) -> str | None:
    """Why ``proc`` is not what ``case`` expects (None if it is)."""
    message = bed.fill(case.message)
    problems = []
    if proc.returncode != case.exit:
        problems.append(f"exit {proc.returncode}, expected {case.exit}")
    if message not in proc.stderr:
        problems.append(f"stderr lacks {message[:120]!r}")
    if case.exit == EACCES and f"{message}\n" not in proc.stderr:
        problems.append("the message runs into the mgr's 'access denied' hint")
    if "Traceback" in proc.stderr or "internal error" in proc.stderr:
        problems.append("a traceback or internal error")
    # The rbd CLI prints the mgr's errno: it must be the one expected.
    marker = f"failed: ({case.exit})"
    if case.cli == "rbd" and "failed: (" in proc.stderr and marker not in proc.stderr:
        problems.append(f"rbd printed another errno than {case.exit}")
    if not problems:
        return None
    return f"{'; '.join(problems)}; stderr: {proc.stderr.strip()[:300]!r}"


def test_bad_input_table(bed: Bed) -> None:
    """Every case: its exit code and message, nothing stored changed, the scheduler answers."""
    cluster = bed.cluster
    p = bed.names["P"]
    known = [f"{p}/img", f"{p}/ns1/img"]
    wait_until(lambda: set(known) <= set(bed.status()), PROMPT, f"{known} in `status`")
    status_before = bed.status()
    before = bed.stored()
    failures: list[str] = []
    for case in CASES:
        proc = bed.run(case)
        problem = _check(bed, case, proc)
        # The record of what each CLI really answered (shown with `pytest -s` or on failure).
        print(f"{bed.cluster.release}\t{case.label()}\t{proc.returncode}\t{proc.stderr.strip()!r}")
        after = bed.stored()
        if after != before:
            changed = [key for key in after if after[key] != before.get(key)]
            problem = f"{problem or ''} STORED CHANGED: {changed}"
            before = after  # report each change once
        status = bed.status()
        if status != status_before:
            problem = f"{problem or ''} STATUS CHANGED: {status_before} -> {status}"
            status_before = status
        if problem:
            failures.append(f"{case.label()}: {problem}")
    assert not failures, f"{len(failures)} of {len(CASES)} cases failed:\n" + "\n".join(failures)

    # The scheduler still works: a valid schedule takes effect at once, snapshot-now snapshots.
    def snapshots(spec: str) -> int:
        out = cluster.run("rbd", "snap", "ls", "--all", "--format", "json", spec).stdout
        return sum(1 for snap in json.loads(out) if snap["namespace"]["type"] == "mirror")

    spec = f"{p}/ns1/img"
    sched(cluster, "add", "-p", f"{p}/ns1", "3h")
    wait_until(
        lambda: spec in status_images(cluster, "-p", f"{p}/ns1"), PROMPT, f"{spec} in `status`"
    )
    count = snapshots(spec)
    raw(cluster, "snapshot-now", f"{p}/ns1/img")
    wait_until(lambda: snapshots(spec) > count, PROMPT, f"a new mirror snapshot of {spec}")
    # A valid but absurd anchor, the last hour datetime holds: stored, shown, explained (its
    # next run would overflow: explain lists the one run there is, not EIO).
    sched(cluster, "add", "-p", f"{p}/ns1", "--image", "img", "1h", "9999-12-31T23:00Z")
    explained = json.loads(raw(cluster, "explain", spec, "3").stdout)["images"]
    assert [e["next_runs"] for e in explained] == [["9999-12-31T23:00:00Z"]]
    sched(cluster, "rm", "-p", f"{p}/ns1", "--image", "img")
    sched(cluster, "rm", "-p", f"{p}/ns1")
    assert bed.status() == status_before


# -- ten clients at once ------------------------------------------------------------------------

CLIENTS = 10
ROUNDS = 3
STARTS = ("00:01", "00:02")
SHARED = ("7m", "00:03")  # one item every client adds and removes


@dataclass(frozen=True)
class Op:
    add: bool
    interval: str
    start: str

    def item(self) -> tuple[str, str]:
        return (self.interval, f"{self.start}:00")


def _own_interval(client: int) -> str:
    return f"{client + 1}h"  # distinct per client: 1h .. 10h


def _run_op(cluster: Cluster, pool: str, client: int, op: Op) -> tuple[int, str]:
    """Half the clients use the rbd CLI, half the ceph CLI."""
    verb = "add" if op.add else ("rm" if client % 2 == 0 else "remove")
    if client % 2 == 0:
        proc = cluster.run(*SCHED, verb, "-p", pool, op.interval, op.start, check=False)
    else:
        proc = cluster.run(*RAW, verb, f"{pool}/", op.interval, op.start, check=False)
    return proc.returncode, proc.stderr


def _listed(cluster: Cluster, pool: str, pool_id: int) -> set[tuple[str, str]]:
    entry = json.loads(raw(cluster, "list", f"{pool}/").stdout).get(str(pool_id))
    items = [] if entry is None else entry["schedule"]
    return {(i["interval"], i["start_time"]) for i in items}


def test_ten_clients_change_one_level_at_once(cluster: Cluster, pools: Pools) -> None:
    """No lost update: the final listing (and storage) equals a serial order's result.

    Each client runs its operations in order, all clients at once. On its own items (an
    interval no other client uses) the serial result is each item's last operation; on the
    shared item, some client's last operation on it (whichever ran last).
    """
    pool = pools.rbd("conc")
    pool_id = _pool_id(cluster, pool)
    rng = random.Random(20261202)
    shared = Op(True, *SHARED).item()
    own: set[tuple[str, str]] = set()  # the clients' own items the serial result holds
    with (
        ThreadPoolExecutor(max_workers=CLIENTS) as executor,
        Remote(cluster, "rbd_snapsched.cluster:RadosOmap", [OUR_OID]) as omap,
    ):
        for round_ in range(ROUNDS):
            # Each client: two operations on its own items (possibly the same item twice, so
            # its own order matters) and one on the shared item, at a random place.
            plans: list[list[Op]] = []
            for client in range(CLIENTS):
                ops = [
                    Op(rng.random() < 0.6, _own_interval(client), s)
                    for s in rng.choices(STARTS, k=2)
                ]
                ops.insert(rng.randrange(len(ops) + 1), Op(rng.random() < 0.5, *SHARED))
                plans.append(ops)

            def work(client: int, ops: list[Op]) -> list[tuple[int, str]]:
                return [_run_op(cluster, pool, client, op) for op in ops]

            futures = [executor.submit(work, c, ops) for c, ops in enumerate(plans)]
            results = [f.result() for f in futures]
            failed = [
                (c, op, rc, err)
                for c, (ops, outcome) in enumerate(zip_equal(plans, results))
                for op, (rc, err) in zip_equal(ops, outcome)
                if rc != 0
            ]
            assert not failed, f"round {round_}: operations failed: {failed}"

            for ops in plans:
                for op in ops:
                    if op.interval != SHARED[0]:
                        (own.add if op.add else own.discard)(op.item())
            shared_last = {[op for op in ops if op.interval == SHARED[0]][-1].add for ops in plans}
            listed = _listed(cluster, pool, pool_id)
            assert listed - {shared} == own, (
                f"round {round_}: lost update: listed {sorted(listed - {shared})}, "
                f"expected {sorted(own)}"
            )
            assert (shared in listed) in shared_last, (
                f"round {round_}: shared item {'present' if shared in listed else 'absent'}, "
                f"but no client's last operation on it was {'add' if shared in listed else 'rm'}"
            )
            # Storage holds exactly what is listed.
            record = omap.call("read", pool_id).get(str(pool_id))
            stored = (
                set()
                if record is None
                else {(i["interval"], i["start_time"]) for i in json.loads(record)}
            )
            assert stored == listed, f"round {round_}: stored {stored} != listed {listed}"
