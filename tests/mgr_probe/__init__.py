"""Test-only ceph-mgr modules, loaded beside ours by ``Cluster(extra_modules=...)``."""
