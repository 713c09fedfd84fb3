import math

import numpy as np
import pytest
import torch

from mgm.data.humanml3d import (
    Caption,
    HumanML3D,
    collate_motions,
    denormalise,
    load_statistics,
    normalise,
    parse_caption_line,
)
from mgm.data.motion_features import canonicalise, normalisation_statistics, recover_joints
from mgm.data.motions import make_motions

# Four procedural clips of 3 s (60 feature frames) in HumanML3D's layout.
CAPTIONS = {
    "000000": ["a person walks forward.#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0"],
    "000001": [
        "a person jumps.#a/DET person/NOUN jump/VERB#0.0#0.0",
        "a person crouches.#a/DET person/NOUN crouch/VERB#0.5#2.75",  # frames 10 .. 55
        "too short.#too/ADV short/ADJ#1.0#2.0",  # 20 frames, under min_frames
    ],
    "000002": ["someone waves.#someone/PRON wave/VERB#nan#nan"],
    "000003": ["a person turns.#a/DET person/NOUN turn/VERB#0.0#0.0"],
}


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("humanml3d")
    clips = make_motions(4, seed=0, labels=["walk", "jump", "wave", "turn"], seconds=3.0)
    (root / "new_joint_vecs").mkdir()
    (root / "texts").mkdir()
    for i, name in enumerate(CAPTIONS):
        np.save(root / "new_joint_vecs" / f"{name}.npy", clips.features[i].numpy())
        (root / "texts" / f"{name}.txt").write_text("\n".join(CAPTIONS[name]) + "\n")
    mean, std = normalisation_statistics(clips.features.flatten(0, 1))
    np.save(root / "Mean.npy", mean.numpy())
    np.save(root / "Std.npy", std.numpy())
    (root / "train.txt").write_text("000000\n000001\n000002\n")
    (root / "test.txt").write_text("000003\n")
    return root, clips


def test_parse_caption_line():
    caption = parse_caption_line("a man kicks with his left leg.#a/DET man/NOUN kick/VERB#1.5#4.25\n")
    assert caption == Caption("a man kicks with his left leg.", ("a/DET", "man/NOUN", "kick/VERB"), 1.5, 4.25)
    assert caption.frames() == (30, 85) and not caption.whole_clip
    assert parse_caption_line("walk #1 of 2.#walk/VERB#0.0#0.0").text == "walk #1 of 2."  # '#' in the caption
    assert parse_caption_line("x#x/X#nan#nan").whole_clip
    with pytest.raises(ValueError, match="expected 'caption#tokens#start#end'"):
        parse_caption_line("no fields here")
    with pytest.raises(ValueError, match="expected start and end in seconds, got 'soon'"):
        parse_caption_line("a#a/DET#soon#0.0")


def test_reads_items_per_caption_with_spans_and_normalisation(fake_root):
    root, clips = fake_root
    dataset = HumanML3D(root, "train")
    assert [item["caption"] for item in dataset] == [
        "a person walks forward.", "a person jumps.", "a person crouches.", "someone waves.",
    ]  # fmt: skip
    assert [item["length"] for item in dataset] == [60, 60, 45, 60]
    span = denormalise(dataset[2]["motion"], dataset.mean, dataset.std)
    assert torch.allclose(span, clips.features[1, 10:55], atol=1e-5)
    # The whole path: stored features -> normalised item -> features -> joints of the clip.
    walk = recover_joints(denormalise(dataset[0]["motion"], *load_statistics(root)))
    assert (walk - canonicalise(clips.joints[0])[:-1]).abs().max() < 1e-4
    assert len(HumanML3D(root, "test")) == 1


def test_frame_limits(fake_root):
    root, _ = fake_root
    assert [item["length"] for item in HumanML3D(root, "train", max_frames=50)] == [50, 50, 45, 50]
    assert [item["length"] for item in HumanML3D(root, "train", min_frames=15)] == [60, 60, 45, 20, 60]
    assert len(HumanML3D(root, "train", min_frames=61)) == 0
    with pytest.raises(ValueError, match="min_frames=50, max_frames=40"):
        HumanML3D(root, "train", max_frames=40, min_frames=50)


def test_normalise_round_trips():
    g = torch.Generator().manual_seed(0)
    x, mean, std = torch.randn(7, 263, generator=g), torch.randn(263, generator=g), torch.rand(263, generator=g) + 0.1
    assert torch.allclose(denormalise(normalise(x, mean, std), mean, std), x, atol=1e-5)
    with pytest.raises(ValueError, match=r"std: got shape \(262,\)"):
        normalise(x, mean, std[1:])


def test_collate_pads_and_keeps_lengths(fake_root):
    root, _ = fake_root
    dataset = HumanML3D(root, "train")
    batch = collate_motions([dataset[2], dataset[0]])
    assert batch["motion"].shape == (2, 60, 263) and batch["length"].tolist() == [45, 60]
    assert torch.equal(batch["motion"][0, :45], dataset[2]["motion"]) and (batch["motion"][0, 45:] == 0).all()
    assert batch["caption"] == ["a person crouches.", "a person walks forward."]


def test_missing_and_corrupt_files_are_named(fake_root, tmp_path):
    root, clips = fake_root
    with pytest.raises(FileNotFoundError, match="HumanML3D folder not found"):
        HumanML3D(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"split='val'.*split files in .*\['test', 'train'\]"):
        HumanML3D(root, "val")
    with pytest.raises(FileNotFoundError, match="new_joint_vecs: folder not found"):
        HumanML3D(tmp_path)

    (tmp_path / "new_joint_vecs").mkdir()
    (tmp_path / "texts").mkdir()
    with pytest.raises(FileNotFoundError, match="Mean.npy: normalisation statistics not found"):
        HumanML3D(tmp_path)
    np.save(tmp_path / "Mean.npy", np.zeros(263, np.float32))
    np.save(tmp_path / "Std.npy", np.ones(263, np.float32) * np.arange(263))
    with pytest.raises(ValueError, match="Std.npy: entry 0 is not positive"):
        HumanML3D(tmp_path)
    np.save(tmp_path / "Std.npy", np.ones(263, np.float32))
    (tmp_path / "train.txt").write_text("a\n")
    np.save(tmp_path / "new_joint_vecs" / "a.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="a.npy: cannot read motion features"):
        HumanML3D(tmp_path)
    np.save(tmp_path / "new_joint_vecs" / "a.npy", np.zeros((50, 251), np.float32))
    with pytest.raises(ValueError, match=r"a.npy: got shape \(50, 251\); expected \[T, 263\]"):
        HumanML3D(tmp_path)
    bad = clips.features[0].numpy().copy()
    bad[3, 5] = math.nan
    np.save(tmp_path / "new_joint_vecs" / "a.npy", bad)
    with pytest.raises(FileNotFoundError, match="a.txt: caption file not found"):
        HumanML3D(tmp_path)
    (tmp_path / "texts" / "a.txt").write_text("x#x/X#0.0#0.0\n")
    with pytest.raises(ValueError, match="a.npy: 1 NaN or infinite values"):
        HumanML3D(tmp_path)[0]
