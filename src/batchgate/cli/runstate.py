"""The private state directory of a ``batchgate run``: the store and blobs, ``run.json`` (the
input's size and hash, the upstreams its rows were routed to and their URLs) and ``lock``, held
for the run."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from batchgate.errors import BatchgateError, ConfigError

MANIFEST = "run.json"
OURS = frozenset(
    {MANIFEST, "lock", "blobs", "batchgate.db", "batchgate.db-wal", "batchgate.db-shm"}
)


def fingerprint(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return {"path": str(path.resolve()), "bytes": size, "sha256": digest}


class RunState:
    """A run's private directory: the store and blobs, ``run.json`` (the input's size and
    hash, the upstreams its rows were routed to and their URLs) and ``lock``, held for the
    whole run.

    Rows name their upstream, so a resumed run must have the same names; the URL behind a
    name may change (the server moved, or the first run's upstream was down and a retry
    goes elsewhere), which ``moved_upstreams`` says out loud."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._created = False

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the state's lock; a second run on the same state fails fast instead."""
        self._created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "unknown"
                raise BatchgateError(
                    f"Another batchgate run (pid {holder}) is using the state in {self.path}; "
                    "wait for it to finish or stop it, or give this run its own --state-dir."
                ) from None
            fh.truncate(0)
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            yield

    def manifest(self) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = orjson.loads((self.path / MANIFEST).read_bytes())
        except FileNotFoundError:
            return None
        return doc

    def adopt(
        self, fingerprint: dict[str, Any], upstreams: list[str], fresh: bool,
        urls: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        """Take the directory for a run of this input, or refuse: it is someone else's,
        or it holds a run of another input (unless ``fresh``: then that run is discarded).
        ``urls``: each upstream's URL by name, kept for ``moved_upstreams``."""
        manifest = self.manifest()
        names = {n for n in os.listdir(self.path) if not n.startswith(f".{MANIFEST}")}
        if manifest is None and names - {"lock"}:
            raise BatchgateError(
                f"{self.path} is not the state directory of a batchgate run (it has no "
                f"{MANIFEST}) and is not empty; refusing to touch it. Pass another --state-dir."
            )
        if manifest is not None and fresh:
            self.discard()
            manifest = None
        if manifest is None:
            doc = {"input": fingerprint, "upstreams": sorted(upstreams), "urls": dict(urls or {})}
            self._write_manifest(doc)
            return
        old = manifest["input"]
        if (old["bytes"], old["sha256"]) != (fingerprint["bytes"], fingerprint["sha256"]):
            raise BatchgateError(
                f"{self.path} holds a run of a different input ({old['path']}: {old['bytes']} "
                f"bytes, sha256 {old['sha256'][:12]}...; now {fingerprint['bytes']} bytes, "
                f"sha256 {fingerprint['sha256'][:12]}...). Pass --fresh to discard that run "
                "and start over, or --state-dir DIR to keep it."
            )

    def check_upstreams(self, names: list[str]) -> None:
        """Rows were routed at validation to upstreams by name; a resumed run must have them."""
        manifest = self.manifest() or {}
        missing = sorted(set(manifest.get("upstreams", [])) - set(names))
        if missing:
            raise ConfigError(
                f"This run's requests were routed to upstream(s) {', '.join(missing)}, which "
                f"the config no longer has (it has {', '.join(names)}); resume with the same "
                "upstream names, or pass --fresh to start over."
            )

    def moved_upstreams(self, urls: Mapping[str, str]) -> list[tuple[str, str, str]]:
        """(name, old URL, new URL) of each upstream whose URL differs from the one the last
        run used; the manifest then keeps the new ones (the next run compares with these)."""
        manifest = self.manifest()
        if manifest is None:
            return []
        known: dict[str, str] = manifest.get("urls", {})
        moved = [(n, known[n], u) for n, u in urls.items() if n in known and known[n] != u]
        if moved or set(urls) - set(known):
            self._write_manifest({**manifest, "urls": {**known, **urls}})
        return moved

    def _write_manifest(self, doc: dict[str, Any]) -> None:
        tmp = self.path / f".{MANIFEST}.tmp"
        tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        os.replace(tmp, self.path / MANIFEST)

    def discard(self) -> None:
        """Delete the run's store, blobs and manifest (not the lock, which we hold)."""
        for name in OURS - {"lock"}:
            target = self.path / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the whole state, and the directory itself if this run created it."""
        self.discard()
        (self.path / "lock").unlink(missing_ok=True)
        if self._created and not any(self.path.iterdir()):
            self.path.rmdir()
