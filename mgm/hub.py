"""Folders on the Hugging Face Hub: every mgm ``from_pretrained`` takes a local folder or a hub id,
and ``push_to_hub`` uploads the folder ``save_pretrained`` writes.

A hub id ("org/name") is fetched through huggingface_hub's standard cache
(``snapshot_download``: ``models--org--name/snapshots/<commit>/``, with ``refs/<branch>`` naming
the commit), so a folder downloaded once loads offline: with ``local_files_only=True`` or the
environment's ``HF_HUB_OFFLINE=1`` nothing is fetched and the cached snapshot is used. A path that
exists on disk is always the local folder. The errors tell apart the three ways a load fails
before anything is read: not in the cache while offline, no such repository (or revision), and
a folder that is not an mgm folder (no ``pipeline.json`` / ``config.json``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

# A repository id "org/name" (letters, digits, '-', '_', '.'). A bare "name" is taken as a local
# path, so a missing relative folder is reported as missing rather than looked up online.
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_TRUE = ("1", "ON", "YES", "TRUE")


def is_offline() -> bool:
    """The environment's HF_HUB_OFFLINE, read now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE or bool(constants.HF_HUB_OFFLINE)


def looks_like_repo_id(name: str | os.PathLike) -> bool:
    return isinstance(name, str) and bool(_REPO_ID.match(name)) and ".." not in name


def resolve_folder(
    name_or_path: str | os.PathLike,
    what: str,
    marker: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """The local folder behind ``name_or_path``: the folder itself when it exists on disk, else
    the cached snapshot of the hub repository of that id (downloaded unless offline).

    ``what`` names the expected content in errors ("a saved ImagePipeline"); ``marker`` is the
    file an mgm folder of that kind always has ("pipeline.json", "config.json").
    """
    from mgm.io import check_folder

    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ValueError(f"{name_or_path!r}: expected the path of {what} or a hub id ('org/name')")
    for name, value in (("revision", revision), ("cache_dir", cache_dir)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"{name}={value!r}: expected None or a string")
    if local_files_only is not None and not isinstance(local_files_only, bool):
        raise ValueError(f"local_files_only={local_files_only!r}: expected None, True or False")
    if Path(name_or_path).exists() or not looks_like_repo_id(name_or_path):
        return check_folder(name_or_path, what)
    folder = _snapshot(str(name_or_path), revision, cache_dir, local_files_only)
    if not (folder / marker).is_file():
        at = f"{name_or_path}" + (f" at revision {revision}" if revision else "")
        raise ValueError(f"{at}: not an mgm folder (it has no {marker}; expected {what})")
    return folder


def _snapshot(repo_id: str, revision, cache_dir, local_files_only) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = is_offline() if local_files_only is None else local_files_only
    cache = cache_dir if cache_dir is not None else constants.HF_HUB_CACHE
    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=offline))
    except LocalEntryNotFoundError:
        why = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE is set"
        if not offline:  # online, yet the hub could not be reached and nothing is cached
            why = "the Hub could not be reached"
        at = f" at revision {revision}" if revision else ""
        raise FileNotFoundError(
            f"{repo_id}{at}: no local folder of that name, not in the Hugging Face cache ({cache}) and {why}; "
            "download it once online, or pass a local folder"
        ) from None
    except RevisionNotFoundError:
        raise FileNotFoundError(f"{repo_id}: the repository has no revision {revision!r}") from None
    except GatedRepoError:
        message = f"{repo_id}: a gated repository; accept its terms and log in (`hf auth login`)"
        raise FileNotFoundError(message) from None
    except RepositoryNotFoundError:
        raise FileNotFoundError(
            f"{repo_id}: no local folder of that name and no such repository on the Hugging Face Hub "
            "(or a private one: log in with `hf auth login`)"
        ) from None
    except HfHubHTTPError as e:
        raise FileNotFoundError(f"{repo_id}: could not be fetched from the Hub ({' '.join(str(e).split())})") from None


class HubMixin:
    """``push_to_hub`` for anything with ``save_pretrained(directory, overwrite=False)``."""

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | None = None,
        revision: str | None = None,
        commit_message: str | None = None,
        create_pr: bool = False,
    ):
        """Save this object as ``save_pretrained`` does and upload that folder to the hub repository
        ``repo_id`` (created if it does not exist). Returns huggingface_hub's CommitInfo."""
        from huggingface_hub import HfApi

        if not looks_like_repo_id(repo_id):
            raise ValueError(f"repo_id={repo_id!r}: expected a hub id 'org/name'")
        api = HfApi(token=token)
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "folder")
            api.create_repo(repo_id, private=private, exist_ok=True)
            return api.upload_folder(
                repo_id=repo_id, folder_path=str(folder), revision=revision, create_pr=create_pr,
                commit_message=commit_message or f"Upload {type(self).__name__} with mgm",
            )  # fmt: skip
