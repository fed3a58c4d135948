"""Publish model folders to, and pull them from, the Hugging Face Hub (or any Hub-compatible server).

Names accepted by :func:`pull` / :func:`load_from_hub`:

* a zoo alias from the manifest (``ntu60-student``), which pins a repository and revision;
* ``hf-hub:org/name`` or ``hf-hub:org/name@revision`` (timm's convention);
* ``org/name`` or ``org/name@revision``.

:func:`fetch` resolves any name (also ``url`` entries, locally built recipes and model folders)
to a local folder whose files were checked against their sha256 (the manifest's pin and
``config.json``'s ``weights_sha256``). Hub pulls go through
:func:`huggingface_hub.snapshot_download`, so files land in the standard Hub cache
(``$HF_HOME/hub`` or ``cache_dir``), the resolved commit is recorded there, and a pulled model
can be used again with no network (``local_files_only=True``, ``HF_HUB_OFFLINE=1``, or
simply an unreachable server). Only the model files (``config.json``, ``model.safetensors``,
``README.md``) are downloaded: pickled weights are never fetched.
"""
from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional, Sequence, Tuple, Union

import asma
from asma.pretrained.config import PretrainedConfig
from asma.pretrained.schema import MODEL_FILES

from .integrity import verified_folder
from .registry import NotBuiltError, ZooEntry, ZooError, list_entries, resolve

if TYPE_CHECKING:  # torch is only imported when a model is built (pull/list/info stay light)
    from torch import nn

PathLike = Union[str, Path]
HF_HUB_PREFIX = "hf-hub:"
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_CARD_PLACEHOLDER = "<org>/<name>"


@dataclass(frozen=True)
class ModelRef:
    """A resolved model name: Hub ``repo_id``, ``revision`` (``None``: the default branch) and
    the zoo ``alias`` it came from, if any."""

    repo_id: str
    revision: Optional[str] = None
    alias: Optional[str] = None

    def __str__(self) -> str:
        return HF_HUB_PREFIX + self.repo_id + (f"@{self.revision}" if self.revision else "")


def parse_model_name(name: str, revision: Optional[str] = None,
                     manifests: Optional[Sequence[PathLike]] = None) -> ModelRef:
    """Turn an alias, ``hf-hub:org/name[@rev]`` or ``org/name[@rev]`` into a :class:`ModelRef`.

    ``revision`` overrides an alias's pinned revision; it may not contradict an ``@rev`` in
    ``name``.

    Raises:
        UnknownModelError: an alias nobody has published (lists the known aliases).
        ZooError: a malformed name.
    """
    raw = name.strip()
    body = raw[len(HF_HUB_PREFIX):] if raw.startswith(HF_HUB_PREFIX) else raw
    if raw.startswith(HF_HUB_PREFIX) or "/" in body:
        repo, _, rev = body.partition("@")
        if not _REPO_RE.match(repo):
            raise ZooError(f"invalid model name {name!r}: expected 'org/name', 'org/name@revision', "
                           "'hf-hub:org/name@revision' or a zoo alias")
        if "@" in body and not rev:
            raise ZooError(f"invalid model name {name!r}: empty revision after '@'")
        if rev and revision and rev != revision:
            raise ZooError(f"{name!r} names revision {rev!r} but revision={revision!r} was also given")
        return ModelRef(repo, revision or rev or None)
    entry = resolve(raw, manifests)
    if entry.hub is None:
        raise ZooError(f"{raw!r} is not published on a Hub ({'a pinned URL' if entry.url else 'a recipe'}); "
                       f"use asma.zoo.hub.fetch({raw!r}) / asma zoo pull {raw}")
    return ModelRef(entry.hub.repo_id, revision or entry.hub.revision, alias=entry.alias)


def _is_network_error(e: BaseException) -> bool:
    names = {c.__name__ for c in type(e).__mro__}
    return isinstance(e, (ConnectionError, TimeoutError)) or bool(
        names & {"TransportError", "ConnectError", "ConnectTimeout", "TimeoutException", "OfflineModeIsEnabled"})


@contextlib.contextmanager
def _hub_errors(what: str, repo_id: str, revision: Optional[str], endpoint: Optional[str],
                cache_dir: Optional[PathLike] = None) -> Iterator[None]:
    """Translate huggingface_hub / network exceptions into one-line :class:`ZooError` s."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)
    where = endpoint or constants.ENDPOINT
    ref = repo_id + (f"@{revision}" if revision else "")
    try:
        yield
    except LocalEntryNotFoundError as e:
        cache = cache_dir or constants.HF_HUB_CACHE
        reason = "incomplete" if type(e).__name__ == "IncompleteSnapshotError" else "not"
        raise ZooError(f"cannot {what} {ref}: it is {reason} in the local cache ({cache}) and the Hub "
                       f"({where}) is unreachable or offline mode is on; pull it once while online") from None
    except GatedRepoError:
        raise ZooError(f"cannot {what} {ref}: the repository is gated on {where}; accept its terms and pass a token") from None
    except RepositoryNotFoundError:
        raise ZooError(f"cannot {what} {ref}: no model repository {repo_id!r} on {where} "
                       "(or it is private: pass a token)") from None
    except RevisionNotFoundError:
        raise ZooError(f"cannot {what} {ref}: repository {repo_id!r} has no revision {revision!r} on {where}") from None
    except HfHubHTTPError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ZooError(f"cannot {what} {ref}: the Hub ({where}) answered: {first}") from None
    except Exception as e:  # network failures come from httpx/requests depending on the version
        if _is_network_error(e):
            raise ZooError(f"cannot {what} {ref}: the Hub ({where}) cannot be reached: {e}") from None
        raise


def _stage(directory: Path, tmp: Path, config: PretrainedConfig, repo_id: str) -> None:
    """Copy the model files of ``directory`` into ``tmp`` (never pickles), with a model card.
    Every name (the index's shards included) must be a file inside ``directory``."""
    from .integrity import INDEX_FILE, confined, weight_files
    names = ["config.json"] + weight_files(directory)
    names += [n for n in (INDEX_FILE, "README.md") if (directory / n).is_file() and n not in names]
    for n in names:
        src, dst = confined(directory, n, str(directory), strict=True), confined(tmp, n, str(tmp), strict=True)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    weights = weight_files(tmp)
    if any(n not in config.weights_sha256 for n in weights):  # a folder saved before hashes were recorded
        from asma.io import sha256_record
        config.weights_sha256 = sha256_record(tmp, weights)
        config.to_json(tmp / "config.json")
    readme = tmp / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8")
        if _CARD_PLACEHOLDER in text:  # card written before the repository was known
            readme.write_text(text.replace(_CARD_PLACEHOLDER, repo_id), encoding="utf-8")
    else:
        from .card import model_card
        readme.write_text(str(model_card(config, repo_id)), encoding="utf-8")


def push_to_hub(directory: PathLike, repo_id: str, revision: Optional[str] = None, endpoint: Optional[str] = None,
                token: Optional[str] = None, private: bool = False, commit_message: Optional[str] = None,
                tag: Optional[str] = None) -> str:
    """Publish a model folder written by :func:`asma.zoo.save_pretrained` (as timm's
    ``push_to_hf_hub``: create the repository if needed, then one ``upload_folder`` commit).

    The folder is validated first (``config.json`` parses, the safetensors weights load into the
    model it describes); only ``config.json``, ``model.safetensors`` (or its shards + index) and
    ``README.md`` are uploaded, and a model card is generated if the folder has none.

    Args:
        directory: the model folder.
        repo_id: ``org/name`` on the Hub.
        revision: branch to commit to (created from the default branch if missing; default ``main``).
        endpoint: Hub URL (default ``$HF_ENDPOINT`` / huggingface.co).
        token: write token (default: the logged-in token / ``$HF_TOKEN``).
        private: create the repository private.
        commit_message: default ``"Upload asma <kind> (<backbone>)"``.
        tag: also tag the new commit (e.g. ``v1.0``) so aliases can pin it.

    Returns:
        The 40-hex sha of the commit holding the model.

    Raises:
        ZooError: invalid folder, or the Hub refused / could not be reached.
    """
    from huggingface_hub import HfApi

    from asma.pretrained.architectures import build_model
    from .model import _load_checked, load_state

    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no model folder at {directory}")
    if not _REPO_RE.match(repo_id):
        raise ZooError(f"invalid repository id {repo_id!r}: expected 'org/name'")
    if revision and _SHA_RE.match(revision):
        raise ZooError(f"revision {revision!r} is a commit sha; push to a branch name (and pin with --tag)")
    config = PretrainedConfig.from_json(directory / "config.json")
    _load_checked(build_model(config), load_state(directory, config.weights_sha256), f"checkpoint {directory}",
                  config)
    api = HfApi(endpoint=endpoint, token=token, library_name="asma", library_version=asma.__version__)
    with _hub_errors("push to", repo_id, revision, endpoint):
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model").repo_id
        if tag and tag in {t.name for t in api.list_repo_refs(repo_id, repo_type="model").tags}:
            raise ZooError(f"tag {tag!r} already exists in {repo_id}; tags pin published weights, so choose a new one")
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="asma-push-") as tmp:
            _stage(directory, Path(tmp), config, repo_id)
            info = api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision, repo_type="model",
                                     commit_message=commit_message or
                                     f"Upload asma {config.kind} ({config.backbone['name']})")
        if tag:
            api.create_tag(repo_id, tag=tag, revision=info.oid, exist_ok=False)
    return info.oid


def pull(name: str, revision: Optional[str] = None, cache_dir: Optional[PathLike] = None,
         endpoint: Optional[str] = None, local_files_only: bool = False, token: Optional[str] = None,
         manifests: Optional[Sequence[PathLike]] = None) -> Path:
    """Download (or find in the cache) a published model and return its snapshot folder.

    The folder is ``<cache>/models--org--name/snapshots/<commit sha>``: its name is the resolved
    commit (:func:`commit_of`), also recorded under ``refs/<revision>`` in the cache, which is
    what makes offline re-use work.

    Args:
        name: zoo alias, ``hf-hub:org/name[@rev]`` or ``org/name[@rev]``.
        revision: tag, branch or commit (overrides an alias's pinned revision).
        cache_dir: Hub cache folder (default ``$HF_HUB_CACHE`` / ``$HF_HOME/hub``).
        endpoint: Hub URL (default ``$HF_ENDPOINT``).
        local_files_only: never touch the network (as ``HF_HUB_OFFLINE=1``).
        token: read token for private repositories.
        manifests: extra manifest files for alias resolution.

    Returns:
        Path of the snapshot folder (``config.json``, ``model.safetensors``, ``README.md``).

    Raises:
        UnknownModelError: unknown alias. ZooError: missing repository/revision, not cached
        while offline, or not an asma model.
    """
    from huggingface_hub import snapshot_download

    ref = parse_model_name(name, revision, manifests)
    with _hub_errors("pull", ref.repo_id, ref.revision, endpoint, cache_dir):
        path = snapshot_download(ref.repo_id, revision=ref.revision, repo_type="model", cache_dir=cache_dir,
                                 endpoint=endpoint, local_files_only=local_files_only, token=token,
                                 allow_patterns=list(MODEL_FILES) + ["model-*.safetensors"],
                                 library_name="asma", library_version=asma.__version__)
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ZooError(f"{ref} (commit {path.name}) is not an asma model: it has no config.json")
    if not (path / "model.safetensors").is_file() and not (path / "model.safetensors.index.json").is_file():
        raise ZooError(f"{ref} (commit {path.name}) has no model.safetensors; asma only loads safetensors "
                       "weights (pickled .bin/.pt files are never downloaded)")
    # the manifest's hashes apply to the revision it pins; an explicit other revision has only its config's
    pinned = resolve(ref.alias, manifests).hub if ref.alias else None
    return verified_folder(path, str(ref), pinned.sha256 if pinned and pinned.revision == ref.revision else None)


def _metrics_text(metrics: Dict[str, Dict[str, float]]) -> str:
    return ", ".join(f"{k} top-1 {v['top1']:.1f} %" for k, v in sorted(metrics.items()) if "top1" in v) or "none"


def not_built_message(entry: ZooEntry, manifests: Optional[Sequence[PathLike]] = None) -> str:
    """What a recipe-only entry is: not trained by anyone yet, the build command, the data it
    needs, its cost, the expected metrics, and the models of the zoo that *can* be pulled."""
    r = entry.recipe
    family = (entry.dataset or r.dataset).split("-")[0]
    pullable = [e for e in list_entries(manifests) if e.pullable]
    near = [e for e in pullable if (e.dataset or "").startswith(family)] or pullable
    offer = "; ".join(f"{e.alias} ({_metrics_text(e.metrics)})" for e in near) or "none yet"
    return (f"{entry.alias!r} is a recipe: no one has trained it yet, so there are no weights to pull. "
            f"Build it with: asma zoo build {entry.alias} --data-dir DATA_DIR (data: {r.data or r.dataset}; "
            f"expected cost: {r.cost or 'not measured'}; expected metrics: {_metrics_text(r.expected)}). "
            f"Models that can be pulled now: {offer}")


def fetch(name: str, *, revision: Optional[str] = None, manifests: Optional[Sequence[PathLike]] = None,
          cache_dir: Optional[PathLike] = None, zoo_cache: Optional[PathLike] = None,
          endpoint: Optional[str] = None, offline: bool = False, token: Optional[str] = None,
          progress: bool = True) -> Path:
    """The local, verified model folder of ``name`` (what ``create_model(name, pretrained=True)``
    loads), downloading it if needed.

    ``name`` is a model folder, ``hf-hub:org/name[@rev]`` / ``org/name[@rev]`` (Hub), or a zoo
    alias: a ``hub`` entry (snapshot in the Hub cache ``cache_dir``, every file checked against
    the manifest's sha256), a ``url`` entry (downloaded, checked, converted into ``zoo_cache``:
    :func:`asma.zoo.download.pull_url`), or a recipe built locally with ``asma zoo build``.

    Raises:
        NotBuiltError: a recipe nobody has built (the message gives the build command, the data,
            the cost, and the models that can be pulled).
        ZooError / CheckpointError: see :func:`pull` and :func:`~asma.zoo.download.pull_url`.
    """
    from .cache import cached_folder
    from .download import pull_url
    if Path(name).is_dir():
        return verified_folder(Path(name), name)
    raw = name.strip()
    if raw.startswith(HF_HUB_PREFIX) or "/" in raw:
        return pull(raw, revision, cache_dir, endpoint, offline, token, manifests)
    entry = resolve(raw, manifests)
    if entry.hub is not None:
        return pull(raw, revision, cache_dir, endpoint, offline, token, manifests)
    if entry.url is not None:
        return pull_url(entry, zoo_cache, offline=offline, progress=progress)
    built = cached_folder(entry.alias, zoo_cache)
    if built is None:
        raise NotBuiltError(not_built_message(entry, manifests))
    return verified_folder(built, entry.alias)


def commit_of(path: PathLike) -> Optional[str]:
    """The commit sha of a snapshot folder returned by :func:`pull` (``None`` for other folders)."""
    name = Path(path).name
    return name if _SHA_RE.match(name) else None


def load_from_hub(name: str, revision: Optional[str] = None, cache_dir: Optional[PathLike] = None,
                  endpoint: Optional[str] = None, local_files_only: bool = False, token: Optional[str] = None,
                  manifests: Optional[Sequence[PathLike]] = None) -> Tuple["nn.Module", PretrainedConfig]:
    """``create_model(name, pretrained=True)`` for the zoo: :func:`fetch` then
    :func:`asma.zoo.load_pretrained` (both verify every file's sha256). ``config.origin``
    records the ``alias``, ``repo_id``, the requested ``revision`` and resolved ``commit`` (Hub
    sources) and the local ``path``.

    Returns:
        ``(model, config)``, the model in eval mode; use ``model(config.preprocess(x))`` with
        joint clips ``x`` of shape :math:`(N, C, T, V, M)`.
    """
    from .model import load_pretrained

    path = fetch(name, revision=revision, manifests=manifests, cache_dir=cache_dir, endpoint=endpoint,
                 offline=local_files_only, token=token)
    model, config = load_pretrained(path)
    raw = name.strip()
    hub_name = raw.startswith(HF_HUB_PREFIX) or "/" in raw
    alias = None if hub_name or Path(raw).is_dir() else raw
    ref = (parse_model_name(raw, revision, manifests) if hub_name or (alias and resolve(alias, manifests).hub)
           else None)
    config.origin = {"alias": alias, "repo_id": ref.repo_id if ref else None, "revision": ref.revision if ref else None,
                     "commit": commit_of(path), "path": str(path)}
    return model, config
