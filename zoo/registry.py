"""The zoo manifest: named models (``actclr-ntu60-xview``, ``ntu60-student``), where their weights
come from and how they were (or are to be) made.

An entry has at most one *source* and may have a *recipe*:

* ``hub``: a Hub repository at a pinned revision, with the sha256 of every weight file;
* ``url``: an immutable URL (a file at a pinned commit of a public repository) with its sha256 and
  the converter that turns it into a zoo folder (:mod:`asma.zoo.convert`);
* ``recipe``: dataset, preset, stages, overrides and the expected metrics; ``asma zoo build NAME``
  runs it (:mod:`asma.zoo.recipes`). An entry with a recipe and no source is "not trained by anyone
  yet" until it is built locally or published.

Sources, in order (a later definition of an alias replaces an earlier one): the built-in
``manifest.json`` shipped inside ``asma.zoo``; the files in ``$ASMA_ZOO_MANIFEST``
(``os.pathsep``-separated); files passed explicitly (``manifests=`` / ``--manifest``);
:func:`add_entry` calls in this process.

Manifest file format (``format_version`` 2)::

    {"format_version": 2,
     "models": {"my-student": {"kind": "student", "description": "...", "license": "apache-2.0",
                               "dataset": "ntu60-xsub", "metrics": {"ntu60-xsub/distill": {"top1": 80.5}},
                               "hub": {"repo_id": "org/asma-student", "revision": "v1.0",
                                       "sha256": {"model.safetensors": "<64 hex>"}},
                               "recipe": {"dataset": "ntu60-xsub", "preset": "paper", ...}}}}
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from asma.pretrained.schema import KINDS

PathLike = Union[str, os.PathLike]

#: Environment variable with extra manifest files (``os.pathsep``-separated).
ENV_MANIFEST = "ASMA_ZOO_MANIFEST"
MANIFEST_FORMAT = 2
_ALIAS_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,95}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class ZooError(ValueError):
    """A zoo problem the user can fix (unknown alias, bad manifest, missing model, unreachable Hub)."""


class UnknownModelError(ZooError, KeyError):
    """No manifest entry for an alias. The message lists the known aliases."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotBuiltError(ZooError):
    """The alias is a recipe nobody has trained yet; the message says how to build it."""


def _fail(where: str, name: str, problem: str) -> None:
    raise ZooError(f"{where}: field {name!r}: {problem}")


def _check_str(where: str, obj: Any, name: str, optional: bool = False) -> None:
    v = getattr(obj, name)
    if not (isinstance(v, str) and (v or optional)) and not (optional and v is None):
        _fail(where, name, f"expected a {'' if optional else 'non-empty '}string, got {v!r}")


@dataclass(frozen=True)
class HubSource:
    """A Hub repository ``repo_id`` at a pinned ``revision`` (tag or 40-hex commit), with the
    ``sha256`` of each weight file (``{file name: hex}``), checked on every pull."""

    repo_id: str
    revision: str
    sha256: Dict[str, str]

    def check(self, where: str) -> None:
        """Raise :class:`ZooError` naming ``where`` and the field when invalid."""
        if not isinstance(self.repo_id, str) or not _REPO_RE.match(self.repo_id):
            _fail(where, "hub.repo_id", f"expected 'org/name', got {self.repo_id!r}")
        if not isinstance(self.revision, str) or not self.revision or any(c.isspace() for c in self.revision):
            _fail(where, "hub.revision", f"expected a pinned tag or commit sha, got {self.revision!r}")
        _check_hashes(where, "hub.sha256", self.sha256)


@dataclass(frozen=True)
class UrlSource:
    """An immutable ``url`` (a file at a pinned ``commit`` of a public ``repository``, at
    ``path``), its ``sha256``, and the ``converter`` (:data:`asma.zoo.convert.LINEAGE_FORMATS`)."""

    url: str
    sha256: str
    converter: str
    repository: str = ""
    commit: str = ""
    path: str = ""
    size: Optional[int] = None

    def check(self, where: str) -> None:
        """Raise :class:`ZooError` naming ``where`` and the field when invalid."""
        if not isinstance(self.url, str) or not self.url.startswith(("https://", "http://", "file://")):
            _fail(where, "url.url", f"expected an http(s) URL, got {self.url!r}")
        if not isinstance(self.sha256, str) or not _SHA256_RE.match(self.sha256):
            _fail(where, "url.sha256", f"expected 64 lowercase hex digits, got {self.sha256!r}")
        from .convert import LINEAGE_FORMATS
        if self.converter not in LINEAGE_FORMATS:
            _fail(where, "url.converter", f"expected one of {', '.join(LINEAGE_FORMATS)}, got {self.converter!r}")
        if self.size is not None and (not isinstance(self.size, int) or self.size < 1):
            _fail(where, "url.size", f"expected a positive byte count, got {self.size!r}")


@dataclass(frozen=True)
class Recipe:
    """How a model is made with ``asma train``: ``dataset`` (a prepared dataset or ``synthetic``),
    ``preset``, ``stages``, ``overrides`` (nested config keys), the model of the run to keep
    (``export``: ``student``, ``teacher``, ``classifier-<e>``, ``encoder-<e>``), the ``expected``
    metrics (the paper's), the ``data`` it needs, and its expected ``cost``."""

    dataset: str
    preset: str
    stages: List[str]
    export: str
    overrides: Dict[str, Any] = field(default_factory=dict)
    expected: Dict[str, Dict[str, float]] = field(default_factory=dict)
    data: str = ""
    cost: str = ""

    def check(self, where: str) -> None:
        """Raise :class:`ZooError` naming ``where`` and the field when invalid."""
        # preset and stage names are checked by asma.train when the recipe is built (listing stays light)
        for name in ("dataset", "preset", "export"):
            _check_str(where, self, name)
        if not isinstance(self.stages, list) or not self.stages or not all(isinstance(s, str) for s in self.stages):
            _fail(where, "recipe.stages", f"expected a list of stage names, got {self.stages!r}")
        if not isinstance(self.overrides, dict):
            _fail(where, "recipe.overrides", "expected an object of config sections")
        _check_metrics(where, "recipe.expected", self.expected)

    def train_overrides(self, data_dir: Optional[str] = None) -> Dict[str, Any]:
        """The nested overrides for :func:`asma.train.config.make_config` (dataset, stages, data dir)."""
        out = json.loads(json.dumps(self.overrides))
        out.setdefault("data", {})["dataset"] = self.dataset
        if data_dir is not None:
            out["data"]["data_dir"] = str(data_dir)
        out["stages"] = list(self.stages)
        return out


def _check_hashes(where: str, name: str, hashes: Any) -> None:
    if not isinstance(hashes, dict) or not hashes:
        _fail(where, name, "expected {file name: sha256 hex} with every weight file")
    for f, h in hashes.items():
        if not isinstance(f, str) or not _FILE_RE.match(f) or ".." in f:
            _fail(where, name, f"{f!r} is not a plain file name")
        if not isinstance(h, str) or not _SHA256_RE.match(h):
            _fail(where, name, f"{f}: expected 64 lowercase hex digits, got {h!r}")


def _check_metrics(where: str, name: str, metrics: Any) -> None:
    if not isinstance(metrics, dict) or not all(
            isinstance(v, dict) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values())
            for v in metrics.values()):
        _fail(where, name, "expected {\"<dataset>/<protocol>\": {\"top1\": %, ...}}")


@dataclass(frozen=True)
class ZooEntry:
    """One named model.

    Attributes:
        alias: short lowercase name (``ntu60-student``); no ``/``.
        kind: ``encoder``, ``classifier``, ``teacher`` or ``student``.
        description: one line for ``asma zoo list``.
        license: licence of the weights (and the terms of the data they were trained on).
        dataset / metrics: training dataset and reported ``{"<dataset>/<protocol>": {"top1": %}}``.
        agreement: checks made on real samples (e.g. ``{"ntu60-real-12": "11/12"}``).
        params / gflops: parameter count and GFLOPs per clip.
        paper: reference.
        hub / url: the weights' source (at most one); recipe: how it is (to be) made.
        source: where the entry was defined (file path, ``built-in`` or ``add_entry``).
    """

    alias: str
    kind: str
    description: str = ""
    license: str = "unknown"
    dataset: Optional[str] = None
    metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)
    agreement: Dict[str, Any] = field(default_factory=dict)
    params: Optional[int] = None
    gflops: Optional[float] = None
    paper: Optional[str] = None
    hub: Optional[HubSource] = None
    url: Optional[UrlSource] = None
    recipe: Optional[Recipe] = None
    source: str = field(default="add_entry", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.alias, str) or not _ALIAS_RE.match(self.alias):
            raise ZooError(f"{self.source}: invalid alias {self.alias!r} (lowercase letters, digits, '.', '_', '-'; "
                           "no '/', which marks Hub repositories)")
        where = f"{self.source}: model {self.alias!r}"
        if self.kind not in KINDS:
            _fail(where, "kind", f"expected one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("description", "license"):
            _check_str(where, self, name, optional=name == "description")
        for name in ("dataset", "paper"):
            _check_str(where, self, name, optional=True)
        _check_metrics(where, "metrics", self.metrics)
        if self.hub is not None and self.url is not None:
            _fail(where, "hub", "an entry has one source: 'hub' or 'url', not both")
        if self.hub is None and self.url is None and self.recipe is None:
            _fail(where, "recipe", "an entry needs a source ('hub' or 'url') or a 'recipe'")
        for part in (self.hub, self.url, self.recipe):
            if part is not None:
                part.check(where)

    @property
    def pullable(self) -> bool:
        """Whether published weights exist (a ``hub`` or ``url`` source)."""
        return self.hub is not None or self.url is not None

    @property
    def has_weights(self) -> bool:
        """Whether weights can be had now: published (``hub``/``url``) or built into the local zoo cache."""
        from .cache import cached_folder
        return self.pullable or cached_folder(self.alias) is not None

    def to_dict(self) -> Dict[str, Any]:
        """The manifest entry (without ``alias`` and ``source``; empty fields left out)."""
        d = asdict(self)
        del d["alias"], d["source"]
        return {k: v for k, v in d.items() if v not in (None, {}, "")}

    @classmethod
    def from_dict(cls, alias: str, data: Any, source: str = "add_entry") -> "ZooEntry":
        """Build and validate an entry from its manifest object.

        Raises:
            ZooError: naming ``source``, the alias and the bad or unknown field.
        """
        where = f"{source}: model {alias!r}"
        if not isinstance(data, Mapping):
            raise ZooError(f"{where}: expected an object")
        data = dict(data)
        for key, part in (("hub", HubSource), ("url", UrlSource), ("recipe", Recipe)):
            if key in data:
                data[key] = _part(part, data[key], f"{where}: field {key!r}")
        _no_unknown(cls, data, where, exclude=("alias", "source"))
        if "kind" not in data:
            _fail(where, "kind", "missing (required)")
        return cls(alias=alias, source=source, **data)


def _no_unknown(cls, data: Mapping[str, Any], where: str, exclude: Sequence[str] = ()) -> None:
    known = {f.name for f in fields(cls)} - set(exclude)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ZooError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")


def _part(cls, data: Any, where: str):
    if not isinstance(data, Mapping):
        raise ZooError(f"{where}: expected an object")
    _no_unknown(cls, data, where)
    try:
        return cls(**data)
    except TypeError as e:  # a required field is missing
        raise ZooError(f"{where}: {str(e).split('__init__() ')[-1]}") from None


_ADDED: Dict[str, ZooEntry] = {}


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
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"zoo manifest not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ZooError(f"{source} line {e.lineno}: invalid JSON ({e.msg})") from None
    except RecursionError:
        raise ZooError(f"{source}: JSON nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ZooError(f"{source}: expected {{\"format_version\": {MANIFEST_FORMAT}, \"models\": {{alias: entry}}}}")
    version = data.get("format_version")
    if version != MANIFEST_FORMAT:
        raise ZooError(f"{source}: manifest format {version!r} is not supported (this asma reads format "
                       f"{MANIFEST_FORMAT}: 'hub'/'url' sources with sha256, 'recipe')")
    return [ZooEntry.from_dict(alias, entry, source) for alias, entry in data["models"].items()]


def write_manifest(path: PathLike, entries: Sequence[ZooEntry]) -> Path:
    """Atomically write ``entries`` as a manifest file (for an organisation's own list)."""
    from asma.io import atomic_write_json
    models = {e.alias: e.to_dict() for e in sorted(entries, key=lambda e: e.alias)}
    atomic_write_json(path, {"format_version": MANIFEST_FORMAT, "models": models})
    return Path(path)


def manifest_paths(manifests: Optional[Sequence[PathLike]] = None) -> List[Path]:
    """The manifest files consulted, in order: built-in, ``$ASMA_ZOO_MANIFEST``, ``manifests``."""
    env = os.environ.get(ENV_MANIFEST, "")
    return ([builtin_manifest_path()] + [Path(p) for p in env.split(os.pathsep) if p.strip()]
            + [Path(p) for p in manifests or ()])


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
    out.update(_ADDED)
    return out


def add_entry(entry: ZooEntry, overwrite: bool = False) -> ZooEntry:
    """Add a named model for this process (e.g. in an organisation's ``sitecustomize`` or a plugin).

    Raises:
        ZooError: the alias is already defined differently and ``overwrite`` is false.
    """
    if not overwrite:
        existing = _ADDED.get(entry.alias) or _all_entries().get(entry.alias)
        if existing is not None and existing != entry:
            raise ZooError(f"alias {entry.alias!r} is already defined by {existing.source}; pass overwrite=True "
                           "to replace it")
    _ADDED[entry.alias] = entry
    return entry


def remove_entry(alias: str) -> None:
    """Remove an alias added with :func:`add_entry` (no error if absent)."""
    _ADDED.pop(alias, None)


def list_entries(manifests: Optional[Sequence[PathLike]] = None) -> List[ZooEntry]:
    """All named models (built-in + ``$ASMA_ZOO_MANIFEST`` + ``manifests`` + added), sorted by alias."""
    return sorted(_all_entries(manifests).values(), key=lambda e: e.alias)


def resolve(alias: str, manifests: Optional[Sequence[PathLike]] = None) -> ZooEntry:
    """The manifest entry of ``alias``.

    Raises:
        UnknownModelError: no such alias (the message lists the known ones).
    """
    entries = _all_entries(manifests)
    if alias not in entries:
        listing = ", ".join(sorted(entries)) or "none"
        raise UnknownModelError(
            f"no model named {alias!r} in the zoo; known names: {listing}. Pull a Hub repository directly as "
            f"'org/name' or 'hf-hub:org/name@revision', or add names with --manifest FILE, ${ENV_MANIFEST} "
            "or asma.zoo.registry.add_entry().")
    return entries[alias]
