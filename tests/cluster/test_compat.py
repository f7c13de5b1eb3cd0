"""The release adapter against each release's own bindings, inside its runtime (host/chroot).

The script runs with the release's python3 and rbd binding, importing our ``compat`` from the
copy the cluster's mgr loads, so what it sees is what the module sees on that release.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from tests.cephcluster import Cluster
from tests.cluster.helpers import Pools, make_image

pytestmark = pytest.mark.ceph_cluster

PROBE = """
import json, sys
import rados, rbd
from rbd_snapsched import compat
conf, pool = sys.argv[1:3]
out = {}
with rados.Rados(conffile=conf) as client, client.open_ioctx(pool) as ioctx:
    for name in sys.argv[3:]:
        with rbd.Image(ioctx, name, read_only=True) as image:
            snaps = list(image.list_snaps())
            times = [compat.utc(image.get_snap_timestamp(s["id"])) for s in snaps]
            out[name] = {
                "mode": compat.image_mirror_mode(image),
                "times": [t.isoformat() for t in times],
                "aware": all(t.tzinfo is not None for t in times),
            }
print(json.dumps(out))
"""


def test_adapter_on_this_release(cluster: Cluster, pools: Pools) -> None:
    pool = pools.rbd("p")
    make_image(cluster, f"{pool}/snap", "snapshot")  # enabling takes a mirror snapshot
    make_image(cluster, f"{pool}/journal", "journal")
    make_image(cluster, f"{pool}/plain", None)
    before = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=1)
    cluster.run("rbd", "snap", "create", f"{pool}/plain@user")
    proc = subprocess.run(
        cluster.argv(
            "/usr/bin/python3",
            "-c",
            PROBE,
            str(cluster.conf),
            pool,
            "snap",
            "journal",
            "plain",
            env={"PYTHONPATH": str(cluster.module_src)},
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["snap"]["mode"] == 1  # RBD_MIRROR_IMAGE_MODE_SNAPSHOT
    assert seen["journal"]["mode"] == 0  # RBD_MIRROR_IMAGE_MODE_JOURNAL
    assert seen["plain"]["mode"] is None  # mirroring disabled: EINVAL on Tentacle, None here
    assert all(entry["aware"] for entry in seen.values())
    (user,) = (datetime.fromisoformat(t) for t in seen["plain"]["times"])
    # The snapshot was taken a moment ago: its time, read as UTC, is now, whatever the release.
    assert user.utcoffset() == timedelta(0)
    assert before <= user <= datetime.now(timezone.utc) + timedelta(seconds=1), user
    assert len(seen["snap"]["times"]) == 1
