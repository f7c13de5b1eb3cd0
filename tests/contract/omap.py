"""The one contract every ``store.OmapBackend`` keeps: the fake and the real cluster's alike."""

from __future__ import annotations

import pytest

from rbd_snapsched.store import OmapBackend, PoolGone


def check_omap_backend(omap: OmapBackend, pool_id: int, missing_pool_id: int) -> None:
    # A pool whose object does not exist yet reads as empty; deleting from it is fine.
    assert omap.read(pool_id) == {}
    omap.delete(pool_id, ["nothing"])
    omap.write(pool_id, "2//abc", b'[{"interval": "1h", "start_time": null}]')
    omap.write(pool_id, "2", b"[]")
    assert omap.read(pool_id) == {
        "2//abc": b'[{"interval": "1h", "start_time": null}]',
        "2": b"[]",
    }
    omap.write(pool_id, "2", b"x")  # overwrite
    assert omap.read(pool_id)["2"] == b"x"
    # More records than one page of reads.
    keys = [f"2//img{i:04d}" for i in range(300)]
    for key in keys:
        omap.write(pool_id, key, key.encode())
    records = omap.read(pool_id)
    assert len(records) == 302 and all(records[k] == k.encode() for k in keys)
    omap.delete(pool_id, [*keys, "2", "never-there"])
    assert omap.read(pool_id) == {"2//abc": b'[{"interval": "1h", "start_time": null}]'}
    omap.delete(pool_id, ["2//abc"])
    assert omap.read(pool_id) == {}
    with pytest.raises(PoolGone):
        omap.read(missing_pool_id)
    with pytest.raises(PoolGone):
        omap.write(missing_pool_id, "k", b"v")
