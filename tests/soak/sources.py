"""What the soak's mgrs load: a fingerprint of the module's sources, taken before and after.

The clusters link this checkout's ``rbd_snapsched`` into their module path, and every mgr that
starts during the run (a failover, a SIGKILL and restart) loads it afresh. A source edited
meanwhile would make the run judge a mixture of two versions; the fingerprint voids such a run.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def fingerprint(package: Path) -> str:
    """A digest of every file under ``package`` that a mgr may import, path and content."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(package)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def describe(package: Path) -> str:
    """The checkout's commit and whether the package differs from it, for the log."""
    git = ["git", "-C", str(package.parent)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", str(package)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {commit}" + (", with uncommitted changes" if dirty else "")
