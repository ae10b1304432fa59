"""A minimal Hugging Face Hub HTTP server for tests: serves in-memory repositories on 127.0.0.1.

This is OURS, not a maintained Hub implementation. It answers only the endpoints that huggingface_hub 2.4 and
datasets 5.2 call when a pipeline loads a dataset or a model at a revision (read from their installed source):

- `GET /api/{datasets|models}/<id>/revision/<rev>` — `HfApi.dataset_info` / `model_info` (hf_api.py:3205,
  3276): `sha` and `siblings`.
- `GET /api/{datasets|models}/<id>/tree/<rev>[/<path>]?recursive=&expand=` — `HfApi.list_repo_tree`
  (hf_api.py:4023), which `HfFileSystem` uses to glob data files (one page, no pagination).
- `POST /api/{datasets|models}/<id>/paths-info/<rev>` — `HfApi.get_paths_info` (hf_api.py:4332).
- `HEAD` / `GET` `/datasets/<id>/resolve/<rev>/<file>` and `/<id>/resolve/<rev>/<file>` — `hf_hub_download`
  (file_download.py `get_hf_file_metadata`: reads `X-Repo-Commit`, `X-Linked-Etag` or `ETag`, `X-Linked-Size`
  or `Content-Length`), with byte ranges for `HfFileSystem` reads.

Errors carry the `X-Error-Code` header `hf_raise_for_status` maps to exceptions (utils/_http.py:871-933):
`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`. No redirects, no Xet, no auth, no dataset viewer.
olah (PyPI) was checked first: it serves local *git* repositories, but needs ~20 extra packages (fastapi,
uvicorn, GitPython, peewee, ...) and git-computed commit ids; these tests need fixed commit ids and branches
that move on demand.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".parquet", ".safetensors", ".bin", ".model", ".arrow")


def fake_commit(*parts: str) -> str:
    """A fixed 40-hex commit id derived from a label (tests name commits, the hub hashes them)."""
    return hashlib.sha1("/".join(parts).encode()).hexdigest()


@dataclass
class Repo:
    """One repository: commits (id -> {path: bytes}) and refs (branch / `refs/...` name -> commit id)."""

    kind: str  # "dataset" | "model"
    id: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    def commit(self, sha: str, files: dict[str, bytes], *refs: str) -> str:
        self.commits[sha] = dict(files)
        for ref in refs:
            self.refs[ref] = sha
        return sha

    def resolve(self, rev: str) -> str | None:
        if rev in self.refs:
            return self.refs[rev]
        return rev if rev in self.commits else None


def _entry(path: str, data: bytes) -> dict:
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    out = {"type": "file", "oid": blob, "size": len(data), "path": path}
    if path.endswith(LFS_SUFFIXES):
        out["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return out


def _dir_entry(path: str) -> dict:
    return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}


class HubServer:
    """`with HubServer(repos) as hub:` serves `repos` at `hub.url`; `hub.requests` logs (method, path)."""

    def __init__(self, repos: list[Repo]):
        self.repos = {(r.kind, r.id): r for r in repos}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()

    def repo(self, kind: str, repo_id: str) -> Repo:
        return self.repos[(kind, repo_id)]

    def move(self, kind: str, repo_id: str, ref: str, sha: str) -> None:
        """Point `ref` at another existing commit (a branch that moved upstream)."""
        with self.lock:
            repo = self.repos[(kind, repo_id)]
            assert sha in repo.commits, sha
            repo.refs[ref] = sha

    # ------------------------------------------------------------------------------------------ routing
    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                server._serve(self, "HEAD")

            def do_GET(self):
                server._serve(self, "GET")

            def do_POST(self):
                server._serve(self, "POST")

        return Handler

    def _serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        segments = [unquote(s) for s in url.path.split("/")[1:]]
        with self.lock:
            self.requests.append((method, url.path))
        try:
            if segments[:1] == ["api"] and len(segments) > 2 and segments[1] in ("datasets", "models"):
                return self._api(h, method, segments[1][:-1], segments[2:], parse_qs(url.query))
            kind, rest = ("dataset", segments[1:]) if segments[:1] == ["datasets"] else ("model", segments)
            if "resolve" in rest and method in ("HEAD", "GET"):
                i = rest.index("resolve")
                return self._resolve(h, method, kind, "/".join(rest[:i]), rest[i + 1], "/".join(rest[i + 2:]))
            self._error(h, 404, None, f"no route for {method} {url.path}")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _repo_and_commit(self, h, kind: str, repo_id: str, rev: str):
        repo = self.repos.get((kind, repo_id))
        if repo is None:
            return self._error(h, 404, "RepoNotFound", f"Repository not found: {repo_id}")
        sha = repo.resolve(rev)
        if sha is None:
            return self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return repo, sha

    def _api(self, h, method: str, kind: str, rest: list[str], query: dict) -> None:
        # <ns>/<name>/<verb>/<rev>[/<path>] ; an id without a namespace has one segment
        n = 1 if len(rest) > 1 and rest[1] in ("revision", "tree", "paths-info") else 2
        repo_id, verb, tail = "/".join(rest[:n]), (rest[n] if len(rest) > n else ""), rest[n + 1:]
        if verb not in ("revision", "tree", "paths-info") or not tail:
            return self._error(h, 404, None, f"unsupported API call {'/'.join(rest)}")
        found = self._repo_and_commit(h, kind, repo_id, tail[0])
        if found is None:
            return
        repo, sha = found
        files = repo.commits[sha]
        if verb == "revision" and method == "GET":
            key = "modelId" if kind == "model" else "id"
            info = {"id": repo_id, key: repo_id, "sha": sha, "private": False, "disabled": False, "gated": False,
                    "downloads": 0, "likes": 0, "tags": [], "lastModified": "2026-01-01T00:00:00.000Z",
                    "siblings": [{"rfilename": p, "size": len(d)} for p, d in sorted(files.items())]}
            return self._json(h, info, sha)
        if verb == "tree" and method == "GET":
            base = "/".join(tail[1:]).strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            return self._json(h, self._tree(h, files, base, recursive), sha)
        if verb == "paths-info" and method == "POST":
            length = int(h.headers.get("Content-Length") or 0)
            form = parse_qs(h.rfile.read(length).decode())
            out = []
            dirs = {p.rsplit("/", k)[0] for p in files for k in range(1, p.count("/") + 1)}
            for p in form.get("paths", []):
                p = p.strip("/")
                if p in files:
                    out.append(_entry(p, files[p]))
                elif p in dirs:
                    out.append(_dir_entry(p))
            return self._json(h, out, sha)
        self._error(h, 405, None, f"{method} not allowed on {verb}")

    def _tree(self, h, files: dict[str, bytes], base: str, recursive: bool):
        prefix = base + "/" if base else ""
        out, dirs = [], set()
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            rel = path[len(prefix):].split("/")
            for k in range(1, len(rel)):
                if recursive or k == 1:
                    dirs.add(prefix + "/".join(rel[:k]))
            if recursive or len(rel) == 1:
                out.append(_entry(path, files[path]))
        if base and not out and not dirs:
            return self._error(h, 404, "EntryNotFound", f"{base} does not exist")
        return [_dir_entry(d) for d in sorted(dirs)] + out

    def _resolve(self, h, method: str, kind: str, repo_id: str, rev: str, path: str) -> None:
        found = self._repo_and_commit(h, kind, repo_id, rev)
        if found is None:
            return
        repo, sha = found
        data = repo.commits[sha].get(path)
        if data is None:
            return self._error(h, 404, "EntryNotFound", f"Entry not found: {path}", sha)
        entry = _entry(path, data)
        etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
        start, end, status = 0, len(data), 200
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes=") and method == "GET":
            first, _, last = rng[6:].partition("-")
            start = int(first) if first else max(0, len(data) - int(last))
            end = min(len(data), int(last) + 1) if first and last else len(data)
            status = 206
        body = data[start:end]
        h.send_response(status)
        h.send_header("X-Repo-Commit", sha)
        h.send_header("ETag", f'"{etag}"')
        if "lfs" in entry:
            h.send_header("X-Linked-Etag", f'"{etag}"')
            h.send_header("X-Linked-Size", str(len(data)))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        h.send_header("Content-Length", str(len(body) if method == "GET" else len(data)))
        h.end_headers()
        if method == "GET":
            h.wfile.write(body)

    # ------------------------------------------------------------------------------------------ replies
    def _json(self, h, payload, sha: str) -> None:
        if payload is None:
            return
        body = json.dumps(payload).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("X-Repo-Commit", sha)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _error(self, h, status: int, code: str | None, message: str, sha: str | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        h.send_response(status)
        if code:
            h.send_header("X-Error-Code", code)
            h.send_header("X-Error-Message", message)
        if sha:
            h.send_header("X-Repo-Commit", sha)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
        return None
