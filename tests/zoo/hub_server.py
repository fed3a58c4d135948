"""A small in-memory, Hugging Face Hub-compatible HTTP server for tests (no internet needed).

It answers what the real ``huggingface_hub`` 2.x client uses to create repositories, commit
files (regular and classic git-LFS uploads; run the client with ``HF_HUB_DISABLE_XET=1``), tag
and branch, and to download single files and snapshots (see docs in
``/work/shared/notes/hub-test-server.md``). Everything lives in memory; ``HubServer.requests``
records ``(method, path, user_agent)`` of every request for assertions.

Usage::

    with HubServer(token="hf_test") as hub:
        HfApi(endpoint=hub.url, token="hf_test").create_repo("org/m")
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml
from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler, make_server

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".msgpack", ".npz", ".zip", ".gz")
_T = r"(models|datasets|spaces)"
_R = r"([\w.-]+)/([\w.-]+)"
_PREFIX = {"models": "", "datasets": "datasets/", "spaces": "spaces/"}
#: The token the test fixtures give the server and the client.
TOKEN = "hf_test_token"


def hub_env(home: Path, endpoint: str = "") -> dict:
    """Environment for a process talking to the test Hub: its own ``HF_HOME``, the test token,
    no telemetry / progress bars / Xet / update check, no zoo manifest, ``HF_ENDPOINT`` if given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update({"HF_HOME": str(home), "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1",
                "ASMA_ZOO_MANIFEST": ""})
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    return env


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # keep test output clean
        pass


def git_blob_sha1(data: bytes) -> str:
    """Git's object id of a blob."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """File content in a commit; ``lfs`` files are addressed by sha256 (as on the Hub)."""

    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
                f"size {len(self.data)}\n").encode()

    @property
    def git_oid(self) -> str:
        return git_blob_sha1(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class Repo:
    """A repository: commits (sha -> {path: Blob}), branches and tags (name -> sha)."""

    kind: str
    repo_id: str
    private: bool = False
    commits: Dict[str, Dict[str, Blob]] = field(default_factory=dict)
    branches: Dict[str, str] = field(default_factory=dict)
    tags: Dict[str, str] = field(default_factory=dict)
    updated: float = field(default_factory=time.time)

    def resolve(self, rev: str) -> Optional[str]:
        """Commit sha of a branch, tag or sha (``None`` if unknown)."""
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        return rev if rev in self.commits else None


class HubServer:
    """In-memory Hub on ``127.0.0.1:<free port>``, served from a background thread.

    Args:
        token: if set, write requests (and reads of private repos) need ``Authorization: Bearer <token>``.
    """

    def __init__(self, token: Optional[str] = None):
        self.token = token
        self.repos: Dict[Tuple[str, str], Repo] = {}
        self.lfs: Dict[str, bytes] = {}
        self.requests: List[Tuple[str, str, str]] = []
        self.lock = threading.RLock()
        self._counter = 0
        self.app = Flask("hub_server")
        self.app.add_url_rule("/", "root", self._dispatch, defaults={"path": ""}, methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
        self.app.add_url_rule("/<path:path>", "all", self._dispatch, methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
        self._server = None
        self._thread: Optional[threading.Thread] = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "HubServer":
        """Serve on 127.0.0.1 on a free port (``self.url``) from a daemon thread."""
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down (idempotent); the data stays in memory."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _json(obj, status: int = 200, headers: Optional[dict] = None) -> Response:
        return Response(json.dumps(obj), status=status, mimetype="application/json", headers=headers or {})

    def _error(self, status: int, code: Optional[str], message: str, headers: Optional[dict] = None) -> Response:
        h = dict(headers or {})
        if code:
            h["X-Error-Code"] = code
        h["X-Error-Message"] = message
        return self._json({"error": message}, status, h)

    def _authorized(self) -> bool:
        return self.token is None or request.headers.get("Authorization") == f"Bearer {self.token}"

    def _repo(self, kind: str, ns: str, name: str) -> Optional[Repo]:
        repo = self.repos.get((kind, f"{ns}/{name}"))
        if repo is not None and repo.private and not self._authorized():
            return None
        return repo

    def _new_sha(self, payload: bytes) -> str:
        self._counter += 1
        return hashlib.sha1(b"%d:" % self._counter + payload).hexdigest()

    def _card_data(self, files: Dict[str, Blob]) -> Optional[dict]:
        readme = files.get("README.md")
        if readme is None:
            return None
        m = re.match(r"^---\n(.*?)\n---", readme.data.decode("utf-8", "replace"), re.S)
        return yaml.safe_load(m.group(1)) if m else None

    def _info(self, repo: Repo, sha: str) -> dict:
        files = repo.commits[sha]
        card = self._card_data(files) or {}
        return {"id": repo.repo_id, "modelId": repo.repo_id, "sha": sha, "private": repo.private,
                "author": repo.repo_id.split("/")[0], "disabled": False, "gated": False,
                "downloads": 0, "likes": 0, "tags": list(card.get("tags", [])),
                "library_name": card.get("library_name"), "pipeline_tag": card.get("pipeline_tag"),
                "cardData": card or None, "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(repo.updated)),
                "createdAt": "2024-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": p, "size": len(b.data)} for p, b in sorted(files.items())]}

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, path: str) -> Response:
        self.requests.append((request.method, "/" + path, request.headers.get("User-Agent", "")))
        p, m = "/" + path, request.method
        routes = [
            ("POST", r"/api/repos/create", self._create_repo),
            ("DELETE", r"/api/repos/delete", self._delete_repo),
            ("POST", r"/api/validate-yaml", lambda: self._json({"errors": [], "warnings": []})),
            ("GET", r"/api/whoami-v2", self._whoami),
            ("GET", r"/api/models", self._list_models),
            ("GET", rf"/api/{_T}/{_R}(?:/revision/([^/]+))?", self._repo_info),
            ("GET", rf"/api/{_T}/{_R}/tree/([^/]+)(?:/(.*))?", self._tree),
            ("GET", rf"/api/{_T}/{_R}/refs", self._refs),
            ("POST", rf"/api/{_T}/{_R}/preupload/([^/]+)", self._preupload),
            ("POST", rf"/api/{_T}/{_R}/commit/([^/]+)", self._commit),
            ("POST", rf"/api/{_T}/{_R}/tag/([^/]+)", self._create_tag),
            ("DELETE", rf"/api/{_T}/{_R}/tag/([^/]+)", self._delete_tag),
            ("POST", rf"/api/{_T}/{_R}/branch/([^/]+)", self._create_branch),
            ("POST", rf"/(?:(datasets|spaces)/)?{_R}\.git/info/lfs/objects/batch", self._lfs_batch),
            ("PUT", r"/__lfs/([0-9a-f]{64})", self._lfs_put),
            ("POST", r"/__lfs/([0-9a-f]{64})/verify", self._lfs_verify),
            ("GET|HEAD", rf"/(?:(datasets|spaces)/)?{_R}/resolve/([^/]+)/(.+)", self._resolve),
        ]
        with self.lock:
            for methods, pattern, handler in routes:
                match = re.fullmatch(pattern, p)
                if match and m in methods.split("|"):
                    return handler(*match.groups())
        return self._error(404, None, f"no route for {m} {p}")

    # ------------------------------------------------------------------ repositories
    def _whoami(self) -> Response:
        if not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header")
        return self._json({"type": "user", "name": "tester", "fullname": "Tester", "orgs": [],
                           "auth": {"accessToken": {"displayName": "test", "role": "write"}}})

    def _create_repo(self) -> Response:
        if not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header")
        body = request.get_json(force=True)
        kind = (body.get("type") or "model") + "s"
        repo_id = f"{body.get('organization') or 'tester'}/{body['name']}"
        url = f"{self.url}/{_PREFIX[kind]}{repo_id}"
        if (kind, repo_id) in self.repos:
            return self._json({"error": "You already created this model repo", "url": url}, 409)
        private = bool(body.get("private")) or body.get("visibility") == "private"
        repo = Repo(kind, repo_id, private)
        sha = self._new_sha(repo_id.encode())
        repo.commits[sha] = {".gitattributes": Blob(b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n", False)}
        repo.branches["main"] = sha
        self.repos[(kind, repo_id)] = repo
        return self._json({"url": url, "name": repo_id})

    def _delete_repo(self) -> Response:
        if not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header")
        body = request.get_json(force=True)
        key = ((body.get("type") or "model") + "s", f"{body.get('organization') or 'tester'}/{body['name']}")
        if self.repos.pop(key, None) is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        return self._json({})

    def _list_models(self) -> Response:
        search = request.args.get("search", "")
        return self._json([self._info(r, r.branches["main"]) for (k, rid), r in sorted(self.repos.items())
                           if k == "models" and search in rid and (not r.private or self._authorized())])

    def _repo_or_404(self, kind, ns, name):
        repo = self._repo(kind, ns, name)
        if repo is None:
            return None, self._error(404, "RepoNotFound", "Repository not found")
        return repo, None

    def _writable_repo(self, kind, ns, name):
        """``_repo_or_404`` behind the write check (401 before 404, as the Hub answers)."""
        if not self._authorized():
            return None, self._error(401, None, "Invalid credentials in Authorization header")
        return self._repo_or_404(kind, ns, name)

    def _repo_info(self, kind, ns, name, rev=None) -> Response:
        repo, err = self._repo_or_404(kind, ns, name)
        if err:
            return err
        sha = repo.resolve(rev or "main")
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return self._json(self._info(repo, sha))

    def _tree(self, kind, ns, name, rev, sub=None) -> Response:
        repo, err = self._repo_or_404(kind, ns, name)
        if err:
            return err
        sha = repo.resolve(rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        recursive = request.args.get("recursive", "false").lower() in ("1", "true")
        prefix = (sub.strip("/") + "/") if sub else ""
        entries, dirs = [], set()
        for p, blob in sorted(repo.commits[sha].items()):
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix):].split("/")
            for i in range(1, len(rest)):
                d = prefix + "/".join(rest[:i])
                if (recursive or i == 1) and d not in dirs:
                    dirs.add(d)
                    entries.append({"type": "directory", "path": d, "oid": git_blob_sha1(d.encode()), "size": 0})
            if recursive or len(rest) == 1:
                e = {"type": "file", "path": p, "size": len(blob.data), "oid": blob.git_oid}
                if blob.lfs:
                    e["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
                entries.append(e)
        if sub and not entries:
            return self._error(404, "EntryNotFound", f"{sub} does not exist", {"X-Repo-Commit": sha})
        return self._json(entries)

    def _refs(self, kind, ns, name) -> Response:
        repo, err = self._repo_or_404(kind, ns, name)
        if err:
            return err
        return self._json({
            "branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": s} for b, s in sorted(repo.branches.items())],
            "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": s} for t, s in sorted(repo.tags.items())],
            "converts": [], "pullRequests": []})

    def _create_tag(self, kind, ns, name, rev) -> Response:
        repo, err = self._writable_repo(kind, ns, name)
        if err:
            return err
        sha = repo.resolve(rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        tag = request.get_json(force=True)["tag"]
        if tag in repo.tags or tag in repo.branches:
            return self._error(409, None, f"Tag {tag} already exists")
        repo.tags[tag] = sha
        return self._json({})

    def _delete_tag(self, kind, ns, name, tag) -> Response:
        repo, err = self._repo_or_404(kind, ns, name)
        if err:
            return err
        if repo.tags.pop(tag, None) is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {tag}")
        return self._json({})

    def _create_branch(self, kind, ns, name, branch) -> Response:
        repo, err = self._writable_repo(kind, ns, name)
        if err:
            return err
        if branch in repo.branches:
            return self._error(409, None, f"Reference already exists: refs/heads/{branch}")
        start = (request.get_json(silent=True) or {}).get("startingPoint") or "main"
        sha = repo.resolve(start)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {start}")
        repo.branches[branch] = sha
        return self._json({})

    # ------------------------------------------------------------------ uploads
    def _preupload(self, kind, ns, name, rev) -> Response:
        repo, err = self._writable_repo(kind, ns, name)
        if err:
            return err
        sha = repo.resolve(rev)
        current = repo.commits.get(sha, {})
        out = []
        for f in request.get_json(force=True)["files"]:
            lfs = f["path"].lower().endswith(LFS_SUFFIXES)
            old = current.get(f["path"])
            out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                        "oid": None if old is None else (old.sha256 if old.lfs else old.git_oid)})
        return self._json({"files": out, "commitOid": sha})

    def _commit(self, kind, ns, name, rev) -> Response:
        repo, err = self._writable_repo(kind, ns, name)
        if err:
            return err
        if rev not in repo.branches:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        raw = request.get_data()
        files = dict(repo.commits[repo.branches[rev]])
        for line in raw.decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "file":
                files[value["path"]] = Blob(base64.b64decode(value["content"]), False)
            elif key == "lfsFile":
                data = self.lfs.get(value["oid"])
                if data is None:
                    return self._error(422, None, f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = Blob(data, True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    return self._error(404, "EntryNotFound", "A file with this name doesn't exist")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: b for p, b in files.items() if not p.startswith(prefix)}
        sha = self._new_sha(raw)
        repo.commits[sha] = files
        repo.branches[rev] = sha
        repo.updated = time.time()
        prefix = _PREFIX[kind]
        return self._json({"commitOid": sha, "commitUrl": f"{self.url}/{prefix}{repo.repo_id}/commit/{sha}",
                           "pullRequestUrl": None})

    def _lfs_batch(self, kind, ns, name) -> Response:
        if not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header")
        body = request.get_json(force=True)
        objects = []
        for obj in body.get("objects", []):
            o = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.lfs:
                o["actions"] = {"upload": {"href": f"{self.url}/__lfs/{obj['oid']}"},
                                "verify": {"href": f"{self.url}/__lfs/{obj['oid']}/verify"}}
            objects.append(o)
        return self._json({"transfer": "basic", "objects": objects}, headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_put(self, oid) -> Response:
        data = request.get_data()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, None, "sha256 mismatch")
        self.lfs[oid] = data
        return self._json({})

    def _lfs_verify(self, oid) -> Response:
        return self._json({}) if oid in self.lfs else self._error(404, None, "object not found")

    # ------------------------------------------------------------------ downloads
    def _resolve(self, prefix, ns, name, rev, path) -> Response:
        kind = (prefix or "models")
        repo = self._repo(kind, ns, name)
        if repo is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        sha = repo.resolve(rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        blob = repo.commits[sha].get(path)
        if blob is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", {"X-Repo-Commit": sha})
        headers = {"X-Repo-Commit": sha, "ETag": f'"{blob.etag}"', "Content-Length": str(len(blob.data)),
                   "Accept-Ranges": "bytes"}
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.data))})
        body = b"" if request.method == "HEAD" else blob.data
        resp = Response(body, status=200, headers=headers, mimetype="application/octet-stream")
        resp.headers["Content-Length"] = str(len(blob.data))
        return resp
