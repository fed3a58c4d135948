"""The zoo manifest: short aliases (``ntu60-student``) -> Hub repository + pinned revision.

Sources, in order (a later definition of an alias replaces an earlier one):

1. the built-in ``manifest.json`` shipped inside ``asma.zoo``. It lists only models that have
   really been published; **it is empty today** (no asma weights are on the Hub yet), so that no
   alias ever points at a repository or revision that does not exist;
2. the files in the ``ASMA_ZOO_MANIFEST`` environment variable (``os.pathsep``-separated);
3. files passed explicitly (``manifests=`` / the CLI's ``--manifest``);
4. :func:`register_model` calls in this process (refuses to replace an alias unless
   ``overwrite=True``).

Manifest file format::

    {"format_version": 1,
     "models": {"ntu60-student": {"repo_id": "my-org/asma-ntu60-xsub-student",
                                  "revision": "v1.0",          # a tag or a 40-hex commit
                                  "kind": "student",
                                  "description": "5-layer ST-GCN student, NTU-60 x-sub"}}}
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

from .schema import KINDS

PathLike = Union[str, os.PathLike]

#: Environment variable with extra manifest files (``os.pathsep``-separated).
ENV_MANIFEST = "ASMA_ZOO_MANIFEST"
MANIFEST_FORMAT = 1
_ALIAS_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,95}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_ENTRY_KEYS = {"repo_id", "revision", "kind", "description"}


class ZooError(ValueError):
    """A zoo problem the user can fix (unknown alias, bad manifest, missing model, unreachable Hub)."""


class UnknownModelError(ZooError, KeyError):
    """No manifest entry for an alias. The message lists the known aliases."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ZooEntry:
    """One named model: ``alias`` -> ``repo_id`` at the pinned ``revision`` (tag or commit sha).

    Attributes:
        alias: short lowercase name (``ntu60-student``); no ``/``.
        repo_id: Hub repository ``org/name``.
        revision: the pinned tag, branch or 40-hex commit.
        kind: ``encoder``, ``classifier``, ``teacher`` or ``student``.
        description: one line for ``asma zoo list``.
        source: where the entry was defined (file path, ``built-in`` or ``register_model``).
    """

    alias: str
    repo_id: str
    revision: str
    kind: str
    description: str = ""
    source: str = field(default="register_model", compare=False)

    def __post_init__(self) -> None:
        where = f"{self.source}: model {self.alias!r}"
        if not isinstance(self.alias, str) or not _ALIAS_RE.match(self.alias):
            raise ZooError(f"{self.source}: invalid alias {self.alias!r} (lowercase letters, digits, '.', '_', '-'; "
                           "no '/', which marks Hub repositories)")
        if not isinstance(self.repo_id, str) or not _REPO_RE.match(self.repo_id):
            raise ZooError(f"{where}: field 'repo_id': expected 'org/name', got {self.repo_id!r}")
        if not isinstance(self.revision, str) or not self.revision or any(c.isspace() for c in self.revision):
            raise ZooError(f"{where}: field 'revision': expected a pinned tag or commit sha, got {self.revision!r}")
        if self.kind not in KINDS:
            raise ZooError(f"{where}: field 'kind': expected one of {', '.join(KINDS)}, got {self.kind!r}")
        if not isinstance(self.description, str):
            raise ZooError(f"{where}: field 'description': expected a string")

    @property
    def name(self) -> str:
        """The full Hub name, ``hf-hub:org/name@revision``."""
        return f"hf-hub:{self.repo_id}@{self.revision}"

    def to_dict(self) -> Dict[str, str]:
        """The manifest entry (without ``alias`` and ``source``)."""
        d = asdict(self)
        del d["alias"], d["source"]
        return d


_REGISTERED: Dict[str, ZooEntry] = {}


def builtin_manifest_path() -> Path:
    """Path of the ``manifest.json`` shipped with ``asma.zoo``."""
    return Path(__file__).resolve().with_name("manifest.json")


def read_manifest(path: PathLike) -> List[ZooEntry]:
    """Parse and validate one manifest file.

    Raises:
        FileNotFoundError: no such file.
        ZooError: invalid JSON or entry (names the file, the alias and the field).
    """
    path = Path(path)
    source = "built-in manifest" if path == builtin_manifest_path() else str(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"zoo manifest not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ZooError(f"{source} line {e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ZooError(f"{source}: expected {{\"format_version\": 1, \"models\": {{alias: entry}}}}")
    version = data.get("format_version", MANIFEST_FORMAT)
    if not isinstance(version, int) or version > MANIFEST_FORMAT:
        raise ZooError(f"{source}: manifest format {version!r} is not supported (this asma reads <= {MANIFEST_FORMAT})")
    entries = []
    for alias, entry in data["models"].items():
        if not isinstance(entry, dict):
            raise ZooError(f"{source}: model {alias!r}: expected an object")
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            raise ZooError(f"{source}: model {alias!r}: unknown field(s) {', '.join(map(repr, unknown))}")
        missing = sorted({"repo_id", "revision", "kind"} - set(entry))
        if missing:
            raise ZooError(f"{source}: model {alias!r}: field {missing[0]!r}: missing (required)")
        entries.append(ZooEntry(alias=alias, source=source, **entry))
    return entries


def write_manifest(path: PathLike, entries: Iterable[ZooEntry]) -> Path:
    """Atomically write ``entries`` as a manifest file (for an organisation's own list)."""
    from asma.io import atomic_write_json
    models = {e.alias: e.to_dict() for e in sorted(entries, key=lambda e: e.alias)}
    atomic_write_json(path, {"format_version": MANIFEST_FORMAT, "models": models})
    return Path(path)


def manifest_paths(manifests: Optional[Sequence[PathLike]] = None) -> List[Path]:
    """The manifest files consulted, in order: built-in, ``$ASMA_ZOO_MANIFEST``, ``manifests``."""
    paths = [builtin_manifest_path()]
    env = os.environ.get(ENV_MANIFEST, "")
    paths += [Path(p) for p in env.split(os.pathsep) if p.strip()]
    paths += [Path(p) for p in manifests or ()]
    return paths


def _all_entries(manifests: Optional[Sequence[PathLike]] = None) -> Dict[str, ZooEntry]:
    out: Dict[str, ZooEntry] = {}
    env_paths = {Path(p) for p in os.environ.get(ENV_MANIFEST, "").split(os.pathsep) if p.strip()}
    for p in manifest_paths(manifests):
        try:
            entries = read_manifest(p)
        except FileNotFoundError:
            if p in env_paths:
                raise FileNotFoundError(f"zoo manifest not found: {p} (listed in ${ENV_MANIFEST})") from None
            raise
        out.update({e.alias: e for e in entries})
    out.update(_REGISTERED)
    return out


def register_model(alias: str, repo_id: str, revision: str, kind: str, description: str = "",
                   overwrite: bool = False) -> ZooEntry:
    """Add an alias for this process (e.g. in an organisation's ``sitecustomize`` or a plugin).

    Args:
        alias: short lowercase name.
        repo_id: Hub repository ``org/name``.
        revision: pinned tag or commit sha (use a tag or sha, not a moving branch).
        kind: ``encoder``, ``classifier``, ``teacher`` or ``student``.
        description: one line for ``asma zoo list``.
        overwrite: replace an existing alias (else :class:`ZooError`).
    """
    entry = ZooEntry(alias=alias, repo_id=repo_id, revision=revision, kind=kind, description=description)
    if not overwrite:
        existing = _REGISTERED.get(alias) or _all_entries().get(alias)
        if existing is not None and existing != entry:
            raise ZooError(f"alias {alias!r} is already defined by {existing.source} "
                           f"({existing.repo_id}@{existing.revision}); pass overwrite=True to replace it")
    _REGISTERED[alias] = entry
    return entry


def unregister_model(alias: str) -> None:
    """Remove an alias added with :func:`register_model` (no error if absent)."""
    _REGISTERED.pop(alias, None)


def list_models(manifests: Optional[Sequence[PathLike]] = None) -> List[ZooEntry]:
    """All known aliases (built-in + ``$ASMA_ZOO_MANIFEST`` + ``manifests`` + registered),
    sorted by alias. Empty until weights are published or you add a manifest."""
    return sorted(_all_entries(manifests).values(), key=lambda e: e.alias)


def unknown_model_message(alias: str, known: Sequence[str]) -> str:
    """The error text for an alias nobody has published."""
    listing = ", ".join(known) if known else "none"
    empty = ("" if known else
             " The built-in manifest is empty because no asma weights have been published to the Hub yet.")
    return (f"no published model named {alias!r} exists yet; known aliases: {listing}.{empty} "
            f"Pull a Hub repository directly as 'org/name' or 'hf-hub:org/name@revision', or add aliases "
            f"with --manifest FILE, ${ENV_MANIFEST} or asma.zoo.register_model().")


def resolve(alias: str, manifests: Optional[Sequence[PathLike]] = None) -> ZooEntry:
    """The manifest entry of ``alias``.

    Raises:
        UnknownModelError: no such alias; the message says that no such published model exists
            (yet) and lists the known aliases.
    """
    entries = _all_entries(manifests)
    if alias not in entries:
        raise UnknownModelError(unknown_model_message(alias, sorted(entries)))
    return entries[alias]
