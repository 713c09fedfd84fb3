"""Loading from and pushing to the Hugging Face Hub, offline: against a cache laid out as
huggingface_hub lays it out (``models--org--name/snapshots/<commit>/``, ``refs/<branch>``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from mgm.models import MaskedTransformer
from mgm.pipelines import ImagePipeline

COMMIT = "a" * 40
OTHER = "b" * 40


def cache_repo(cache: Path, repo_id: str, folder: Path | None, commit: str = COMMIT, ref: str | None = "main") -> Path:
    """Put ``folder``'s files in ``cache`` as a snapshot of ``repo_id`` at ``commit`` (and point
    ``refs/<ref>`` at it), as huggingface_hub's downloads leave them."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    if folder is not None:
        shutil.copytree(folder, snapshot)
    else:
        snapshot.mkdir(parents=True)
    if ref is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture
def model() -> MaskedTransformer:
    torch.manual_seed(0)
    return MaskedTransformer([8], [4, 4], dim=16, depth=1, num_heads=2, num_classes=2).eval()


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_model_loads_from_the_cache_offline(model, tmp_path, monkeypatch):
    model.save_pretrained(tmp_path / "saved")
    cache_repo(tmp_path / "cache", "org/tiny", tmp_path / "saved")
    loaded = MaskedTransformer.from_pretrained("org/tiny", cache_dir=tmp_path / "cache", local_files_only=True)
    assert _same_weights(loaded, model)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the environment's switch alone keeps it offline
    assert _same_weights(MaskedTransformer.from_pretrained("org/tiny", cache_dir=tmp_path / "cache"), model)


def test_revisions_are_branches_or_commits(model, tmp_path):
    model.save_pretrained(tmp_path / "v1")
    torch.manual_seed(1)
    other = MaskedTransformer([8], [4, 4], dim=16, depth=1, num_heads=2, num_classes=2).eval()
    other.save_pretrained(tmp_path / "v2")
    cache = tmp_path / "cache"
    cache_repo(cache, "org/tiny", tmp_path / "v1")
    cache_repo(cache, "org/tiny", tmp_path / "v2", commit=OTHER, ref="v2")
    load = lambda **kw: MaskedTransformer.from_pretrained("org/tiny", cache_dir=cache, local_files_only=True, **kw)  # noqa: E731
    assert _same_weights(load(), model)
    assert _same_weights(load(revision="v2"), other)
    assert _same_weights(load(revision=OTHER), other)
    assert _same_weights(load(revision=COMMIT), model)


def test_the_three_failures_are_told_apart(model, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    with pytest.raises(FileNotFoundError, match="not in the Hugging Face cache .* local_files_only=True"):
        MaskedTransformer.from_pretrained("org/absent", cache_dir=cache, local_files_only=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE is set"):
        MaskedTransformer.from_pretrained("org/absent", cache_dir=cache)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "weights.bin").write_bytes(b"\0")
    cache_repo(cache, "org/foreign", tmp_path / "other")
    with pytest.raises(ValueError, match="org/foreign: not an mgm folder .*config.json"):
        MaskedTransformer.from_pretrained("org/foreign", cache_dir=cache)
    model.save_pretrained(tmp_path / "model")
    cache_repo(cache, "org/model", tmp_path / "model")
    with pytest.raises(ValueError, match="org/model: not an mgm folder .*pipeline.json"):
        ImagePipeline.from_pretrained("org/model", cache_dir=cache)


def test_no_such_repository_is_its_own_error(monkeypatch):
    """What the Hub answers for a missing repository (huggingface_hub raises RepositoryNotFoundError
    from its 404) becomes the "no such repository" error; the network is not reached here."""
    import huggingface_hub
    import requests
    from huggingface_hub.errors import RepositoryNotFoundError

    def not_found(repo_id, **kwargs):
        response = requests.Response()
        response.status_code = 404
        raise RepositoryNotFoundError(f"404: {repo_id}", response=response)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_found)
    with pytest.raises(FileNotFoundError, match="org/nothing: no local folder of that name and no such repository"):
        MaskedTransformer.from_pretrained("org/nothing", local_files_only=False)


def test_local_paths_never_go_to_the_hub(model, tmp_path, monkeypatch):
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("a local path was looked up on the Hub")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    monkeypatch.chdir(tmp_path)
    model.save_pretrained(Path("org") / "tiny")
    assert _same_weights(MaskedTransformer.from_pretrained("org/tiny"), model), "an existing folder wins"
    for missing in ("missing", "./org/missing", "a/b/c", tmp_path / "org" / "missing"):
        with pytest.raises(FileNotFoundError, match="no such directory"):
            MaskedTransformer.from_pretrained(missing)
    with pytest.raises(ValueError, match="revision=3"):
        MaskedTransformer.from_pretrained("org/tiny", revision=3)


def test_a_pipeline_round_trips_through_push_to_hub(tiny_image_pipeline, tmp_path, monkeypatch):
    """push_to_hub uploads the folder save_pretrained writes; here the upload lands in a local
    cache layout (no network), from which from_pretrained loads the same pipeline."""
    import huggingface_hub

    cache, uploads = tmp_path / "cache", []

    def create_repo(self, repo_id, **kwargs):
        uploads.append(("create", repo_id, kwargs.get("private")))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        uploads.append(("upload", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))
        cache_repo(cache, repo_id, Path(folder_path))

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    tiny_image_pipeline.push_to_hub("me/shapes", private=True)
    assert uploads[0] == ("create", "me/shapes", True)
    assert uploads[1][2] == ["manifest.json", "pipeline.json", "tokenizer", "transformer"]
    loaded = ImagePipeline.from_pretrained("me/shapes", cache_dir=cache, local_files_only=True)
    assert torch.equal(loaded.generate(num=2, seed=3), tiny_image_pipeline.generate(num=2, seed=3))
    with pytest.raises(ValueError, match="repo_id='not an id'"):
        tiny_image_pipeline.push_to_hub("not an id")


def test_the_cli_loads_a_hub_id_from_the_cache(tiny_image_pipeline, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from mgm.cli.generate import main

    tiny_image_pipeline.save_pretrained(tmp_path / "pipe")
    cache_repo(tmp_path / "cache", "me/shapes", tmp_path / "pipe")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    main(["image", "--model", "me/shapes", "--num", "2", "--out", str(tmp_path / "out")])
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png"))[:2] == ["sample_000.png", "sample_001.png"]
    with pytest.raises(SystemExit) as exit_:
        main(["image", "--model", "me/absent", "--num", "1", "--out", str(tmp_path / "out2")])
    assert exit_.value.code == 2


def test_an_image_vq_loads_from_the_cache_through_diffusers(tiny_vq, tmp_path):
    """ImageVQ's hub ids go through diffusers' own loader, which reads the same cache."""
    from mgm.tokenizers import ImageVQ

    tiny_vq.save_pretrained(tmp_path / "vq")
    cache_repo(tmp_path / "cache", "org/vq", tmp_path / "vq")
    loaded = ImageVQ.from_pretrained("org/vq", cache_dir=tmp_path / "cache", local_files_only=True)
    images = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded.encode(images), tiny_vq.encode(images))
    with pytest.raises(FileNotFoundError, match="org/absent"):
        ImageVQ.from_pretrained("org/absent", cache_dir=tmp_path / "cache", local_files_only=True)
