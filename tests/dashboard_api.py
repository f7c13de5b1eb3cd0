"""A small client of the Ceph dashboard's REST API, as its web UI calls it (standard library only).

The UI sends every ``/api`` request with ``Accept: application/vnd.ceph.api.v<X.Y>+json`` (1.0
unless an endpoint is versioned: the image list is 2.0), a JSON body, and the JWT that
``POST /api/auth`` returns as ``Authorization: Bearer``. Long requests of the UI's forms are
dashboard *tasks*: they answer 201/200 when done within the task's own wait (2 s for an image
create, 4 s for an edit), else 202 with the task's name and metadata, and the UI then polls
``GET /api/task?name=...`` until the task is among ``finished_tasks`` (``wait_task``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

V1 = "1.0"
V2 = "2.0"


class DashboardError(RuntimeError):
    """A request got an answer the caller did not expect; the message carries it."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the decoded JSON, or the raw text if it is not JSON
    text: str


def accept(version: str) -> str:
    return f"application/vnd.ceph.api.v{version}+json"


def image_path(spec: str) -> str:
    """``/api/block/image/<spec>``, the spec URL-encoded as the UI does (``pool%2Fimage``)."""
    return "/api/block/image/" + urllib.parse.quote(spec, safe="")


class Dashboard:
    """The REST API of one dashboard at ``base`` (e.g. ``http://127.0.0.1:8080``)."""

    def __init__(self, base: str, *, timeout: float = 30) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.token: str | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        version: str = V1,
        query: dict[str, str] | None = None,
    ) -> Answer:
        """One request; any HTTP status is returned, not raised."""
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Accept": accept(version)}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        text = raw.decode(errors="replace")
        try:
            decoded: Any = json.loads(text) if text else None
        except ValueError:
            decoded = text
        return Answer(status, decoded, text)

    def expect(self, answer: Answer, *statuses: int, what: str) -> Answer:
        if answer.status not in statuses:
            raise DashboardError(
                f"{what}: HTTP {answer.status}, expected {statuses}: {answer.text}"
            )
        return answer

    def login(self, username: str, password: str) -> dict[str, Any]:
        """``POST /api/auth``; the token it returns is sent from then on."""
        answer = self.request("POST", "/api/auth", {"username": username, "password": password})
        self.expect(answer, 200, 201, what="POST /api/auth")
        self.token = str(answer.body["token"])
        body: dict[str, Any] = answer.body
        return body

    def task(self, method: str, path: str, body: Any, *, timeout: float = 60) -> Answer:
        """A request that runs as a dashboard task: its answer, or, if it was 202 (still
        running), the task once finished (``wait_task``); raises if the task failed."""
        answer = self.request(method, path, body)
        self.expect(answer, 200, 201, 202, what=f"{method} {path}")
        if answer.status == 202:
            finished = self.wait_task(answer.body["name"], answer.body["metadata"], timeout)
            if not finished.get("success"):
                raise DashboardError(f"{method} {path}: task failed: {finished}")
        return answer

    def wait_task(self, name: str, metadata: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Poll ``GET /api/task?name=NAME`` (as the UI's task manager does) until the task
        with ``metadata`` is among the finished ones; that entry."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.expect(
                self.request("GET", "/api/task", query={"name": name}), 200, what="GET /api/task"
            )
            for entry in answer.body.get("finished_tasks", []):
                if entry.get("name") == name and entry.get("metadata") == metadata:
                    found: dict[str, Any] = entry
                    return found
            if time.monotonic() > deadline:
                raise DashboardError(f"task {name} {metadata} not finished in {timeout}s")
            time.sleep(0.5)

    # -- the RBD image pages ------------------------------------------------------------

    def default_features(self) -> list[str]:
        """``GET /api/block/image/default_features``: what the create form ticks."""
        answer = self.request("GET", "/api/block/image/default_features")
        features: list[str] = self.expect(answer, 200, what="default_features").body
        return features

    def image(self, spec: str) -> dict[str, Any]:
        """``GET /api/block/image/<spec>``: what the image's details and edit form read."""
        answer = self.expect(self.request("GET", image_path(spec)), 200, what=f"GET {spec}")
        found: dict[str, Any] = answer.body
        return found

    def images(self, pool: str) -> list[dict[str, Any]]:
        """``GET /api/block/image?pool_name=POOL`` (version 2.0, the images list): the pool's
        images as the list page gets them."""
        query = {"pool_name": pool, "offset": "0", "limit": "10", "search": "", "sort": "+name"}
        answer = self.request("GET", "/api/block/image", version=V2, query=query)
        pools: list[dict[str, Any]] = self.expect(answer, 200, what="GET images").body
        return [image for entry in pools for image in entry["value"]]
