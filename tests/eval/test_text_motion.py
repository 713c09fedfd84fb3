import datetime

import pytest
import torch

from mgm.data.motions import CLASSES, make_motions
from mgm.eval.frechet import feature_statistics, frechet_distance
from mgm.eval.motion_metrics import r_precision
from mgm.eval.text_motion import (
    T2M_POS,
    TextMotionEvaluator,
    load_t2m_evaluator,
    t2m_text_inputs,
)
from mgm.models.text import WordTextEncoder

TINY = dict(dim_word=8, dim_movement_enc_hidden=16, dim_movement_latent=12, dim_motion_hidden=10,
            dim_text_hidden=14, dim_coemb_hidden=6)  # fmt: skip


def _captions_evaluator(**kw) -> TextMotionEvaluator:
    torch.manual_seed(0)
    vocab = WordTextEncoder.build_vocab(["a person walks forward.", "someone waves with the left hand."])
    return TextMotionEvaluator("captions", vocab=vocab, **{**TINY, **kw}).eval()


def test_architecture_shapes_and_padding_is_ignored():
    torch.manual_seed(0)
    evaluator = TextMotionEvaluator(**TINY).eval()  # the original's text side: word vectors + POS
    features = torch.randn(3, 37, 263)
    movements = evaluator.movement_encoder(features[..., :259])
    assert movements.shape == (3, 37 // 4, 12)  # one movement code per 4 frames
    lengths = torch.tensor([37, 20, 8])
    motion = evaluator.embed_motion(features, lengths)
    assert motion.shape == (3, 6)
    # A clip padded with anything past its length embeds as the clip alone.
    alone = evaluator.embed_motion(features[1:2, :20])
    torch.testing.assert_close(motion[1:2], alone, rtol=1e-5, atol=1e-5)
    words, pos = torch.randn(3, 7, 8), torch.eye(len(T2M_POS))[torch.randint(15, (3, 7))]
    text = evaluator.embed_text(word_embs=words, pos_onehot=pos, lengths=torch.tensor([7, 3, 5]))
    assert text.shape == (3, 6)
    shorter = evaluator.embed_text(word_embs=words[1:2, :3], pos_onehot=pos[1:2, :3], lengths=torch.tensor([3]))
    torch.testing.assert_close(text[1:2], shorter, rtol=1e-5, atol=1e-5)

    captions = _captions_evaluator()
    assert captions.embed_text(["a person walks forward.", "an unknown caption"]).shape == (2, 6)
    assert captions.text_encoder.pos_emb is None  # no POS one-hots on the caption side


def test_bad_input_names_the_argument():
    evaluator = TextMotionEvaluator(**TINY).eval()
    with pytest.raises(ValueError, match=r"features: got shape \(2, 10, 251\)"):
        evaluator.embed_motion(torch.zeros(2, 10, 251))
    with pytest.raises(ValueError, match=r"lengths: got \[10, 3\]; expected frame counts from 4 to 10"):
        evaluator.embed_motion(torch.zeros(2, 10, 263), torch.tensor([10, 3]))
    with pytest.raises(ValueError, match="features: contains NaN"):
        evaluator.embed_motion(torch.full((1, 8, 263), float("nan")))
    with pytest.raises(ValueError, match="texts: .* GloVe word vectors"):
        evaluator.embed_text(["a person walks."])
    with pytest.raises(ValueError, match=r"pos_onehot: got .*expected a float tensor \[B, L, 15\]"):
        evaluator.embed_text(word_embs=torch.zeros(1, 3, 8), pos_onehot=torch.zeros(1, 3, 4), lengths=[3])
    with pytest.raises(ValueError, match="texts: this evaluator reads captions"):
        _captions_evaluator().embed_text(word_embs=torch.zeros(1, 3, 8))
    with pytest.raises(ValueError, match="text_input='glove'"):
        TextMotionEvaluator("glove")
    with pytest.raises(ValueError, match="std: entry 0 is not positive"):
        evaluator.set_statistics_(torch.zeros(263), torch.zeros(263))


def _original_checkpoint(dim_pose=263, word=300, pos=15, hidden=512, latent=512, motion_hidden=1024,
                         text_hidden=512, coemb=512) -> dict:  # fmt: skip
    """Random tensors under the names and shapes of the released ``text_mot_match/model/finest.tar``,
    written out here from the original's modules (not from mgm's), with its optimiser entries."""
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731

    def bigru(inputs: int, size: int, out: int) -> dict:
        state = {"hidden": r(2, 1, size), "input_emb.weight": r(size, inputs), "input_emb.bias": r(size)}
        for suffix in ("l0", "l0_reverse"):
            state |= {f"gru.weight_ih_{suffix}": r(3 * size, size), f"gru.weight_hh_{suffix}": r(3 * size, size),
                      f"gru.bias_ih_{suffix}": r(3 * size), f"gru.bias_hh_{suffix}": r(3 * size)}  # fmt: skip
        return state | {
            "output_net.0.weight": r(size, 2 * size), "output_net.0.bias": r(size),
            "output_net.1.weight": r(size), "output_net.1.bias": r(size),
            "output_net.3.weight": r(out, size), "output_net.3.bias": r(out),
        }  # fmt: skip

    movement = {
        "main.0.weight": r(hidden, dim_pose - 4, 4), "main.0.bias": r(hidden),
        "main.3.weight": r(latent, hidden, 4), "main.3.bias": r(latent),
        "out_net.weight": r(latent, latent), "out_net.bias": r(latent),
    }  # fmt: skip
    text = bigru(word, text_hidden, coemb) | {"pos_emb.weight": r(word, pos), "pos_emb.bias": r(word)}
    optimiser = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": r(4)}},
        "param_groups": [{"lr": 1e-4, "params": [0]}],
    }
    return {
        "movement_encoder": movement, "motion_encoder": bigru(latent, motion_hidden, coemb), "text_encoder": text,
        "opt_motion_encoder": optimiser, "opt_text_encoder": optimiser, "epoch": 99, "iter": 12345,
    }  # fmt: skip


def test_original_checkpoint_loads_with_weights_only(tmp_path):
    checkpoint = _original_checkpoint()
    path = tmp_path / "t2m" / "text_mot_match" / "model" / "finest.tar"
    path.parent.mkdir(parents=True)
    torch.save(checkpoint, path)
    mean, std = torch.randn(263), torch.rand(263) + 0.5
    evaluator = load_t2m_evaluator(tmp_path / "t2m", mean=mean.numpy(), std=std)  # the folder finds finest.tar
    config = evaluator.config
    assert (config["dim_pose"], config["dim_word"], config["dim_pos_ohot"], config["dim_movement_enc_hidden"],
            config["dim_movement_latent"], config["dim_motion_hidden"], config["dim_text_hidden"],
            config["dim_coemb_hidden"]) == (263, 300, 15, 512, 512, 1024, 512, 512)  # fmt: skip
    assert config == TextMotionEvaluator().config  # the defaults are the original's sizes
    for part in ("movement_encoder", "motion_encoder", "text_encoder"):
        loaded = getattr(evaluator, part).state_dict()
        assert loaded.keys() == checkpoint[part].keys()
        assert all(torch.equal(loaded[k], v) for k, v in checkpoint[part].items())
    assert torch.equal(evaluator.mean, mean) and torch.equal(evaluator.std, std)
    # Raw features are normalised with the given statistics.
    features = torch.randn(2, 16, 263)
    raw = evaluator.embed_motion(features * std + mean)
    torch.testing.assert_close(
        raw, evaluator.embed_normalised_motion(features, torch.tensor([16, 16])), rtol=1e-4, atol=1e-4
    )
    # The text side takes the original's inputs, built from word/POS tokens and GloVe-like vectors.
    vectors = {w: torch.randn(300).tolist() for w in ("sos", "eos", "unk", "a", "man", "walks", "left")}
    words, pos, lengths = t2m_text_inputs([["a/DET", "man/NOUN", "walks/VERB", "left/ADV", "zzz/NOUN"]], vectors)
    assert words.shape == (1, 22, 300) and pos.shape == (1, 22, 15) and lengths.tolist() == [7]
    names = [T2M_POS[i] for i in pos[0].argmax(-1).tolist()]
    assert names[:8] == ["OTHER", "DET", "NOUN", "VERB", "Loc_VIP", "OTHER", "OTHER", "OTHER"]  # zzz: unknown
    assert torch.equal(words[0, 5], torch.tensor(vectors["unk"])) and torch.equal(
        words[0, 2], torch.tensor(vectors["man"])
    )
    assert evaluator.embed_text(word_embs=words, pos_onehot=pos, lengths=lengths).shape == (1, 512)


def test_original_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="text_mot_match/model/finest.tar"):
        load_t2m_evaluator(tmp_path / "nowhere.tar")
    small = _original_checkpoint(word=8, pos=15, hidden=8, latent=8, motion_hidden=8, text_hidden=8, coemb=4)
    del small["text_encoder"]
    torch.save(small, tmp_path / "missing.tar")
    with pytest.raises(ValueError, match=r"no \['text_encoder'\] state dict"):
        load_t2m_evaluator(tmp_path / "missing.tar")
    small = _original_checkpoint(word=8, pos=15, hidden=8, latent=8, motion_hidden=8, text_hidden=8, coemb=4)
    del small["motion_encoder"]["gru.weight_hh_l0"]
    torch.save(small, tmp_path / "partial.tar")
    with pytest.raises(ValueError, match=r"checkpoint\['motion_encoder'\] does not fit .*gru.weight_hh_l0"):
        load_t2m_evaluator(tmp_path / "partial.tar")
    # Anything that needs more than tensors and plain containers is refused, never unpickled.
    torch.save({"movement_encoder": datetime.date(2022, 6, 1)}, tmp_path / "evil.tar")
    with pytest.raises(ValueError, match="refused"):
        load_t2m_evaluator(tmp_path / "evil.tar")
    torch.save(_original_checkpoint(word=8, hidden=8, latent=8, motion_hidden=8, text_hidden=8, coemb=4),
               tmp_path / "ok.tar")  # fmt: skip
    with pytest.raises(ValueError, match="mean, std: got only one"):
        load_t2m_evaluator(tmp_path / "ok.tar", mean=torch.zeros(263))


def test_small_evaluator_save_load_round_trip(tmp_path):
    evaluator = _captions_evaluator()
    evaluator.set_statistics_(torch.randn(263), torch.rand(263) + 0.1)
    evaluator.save_pretrained(tmp_path / "ev")
    loaded = TextMotionEvaluator.from_pretrained(tmp_path / "ev")
    assert loaded.config == evaluator.config and loaded.config["vocab"][:3] == ["<pad>", "<unk>", "a"]
    features, captions = torch.randn(2, 12, 263), ["a person walks forward.", "someone waves."]
    assert torch.equal(loaded.embed_motion(features), evaluator.embed_motion(features))
    assert torch.equal(loaded.embed_text(captions), evaluator.embed_text(captions))
    with pytest.raises(FileExistsError):
        evaluator.save_pretrained(tmp_path / "ev")


def test_training_builds_the_vocabulary_and_lowers_the_loss():
    from mgm.training.motion_data import Motions7DataModule
    from mgm.training.text_motion import TextMotionTraining, contrastive_margin_loss
    from tests.conftest import quiet_trainer

    # The loss: matched pairs pulled in, mismatched ones pushed to the margin, identical captions left alone.
    text, motion = torch.tensor([[0.0], [1.0], [5.0]]), torch.tensor([[0.0], [1.0], [5.0]])
    loss, _ = contrastive_margin_loss(text, motion, margin=2.0)
    assert loss == pytest.approx((1 + 1 + 0 + 0 + 0 + 0) / 6)  # positives at 0; the two pairs 1 apart are 1 short of 2
    same = torch.tensor([[True, True, False], [True, True, False], [False, False, True]])
    assert contrastive_margin_loss(text, motion, 2.0, same)[0] == pytest.approx(0.0)

    torch.manual_seed(0)
    data = Motions7DataModule(num_clips=48, crop_frames=120, batch_size=16, val_fraction=0.25)
    system = TextMotionTraining(TextMotionEvaluator("captions", **TINY), lr=3e-3, warmup_steps=1)
    trainer = quiet_trainer(12, limit_val_batches=0)
    trainer.fit(system, data)
    evaluator = system.evaluator.eval()
    captions = [data.train_set[i]["caption"] for i in range(len(data.train_set))]
    assert evaluator.config["vocab"] == WordTextEncoder.build_vocab(captions)  # rebuilt from the data
    assert torch.equal(evaluator.mean, data.mean) and torch.equal(evaluator.std, data.std)
    batch = next(iter(data.train_dataloader()))

    def batch_loss(model: TextMotionEvaluator) -> float:
        with torch.no_grad():
            motion = model.embed_normalised_motion(batch["motion"], batch["length"])
            return float(contrastive_margin_loss(model.embed_text(batch["caption"]), motion, 10.0)[0])

    torch.manual_seed(0)
    fresh = TextMotionEvaluator("captions", vocab=evaluator.config["vocab"], **TINY).eval()
    assert batch_loss(evaluator) < 0.8 * batch_loss(fresh)
    with pytest.raises(ValueError, match="evaluator: text_input='word_vectors'"):
        TextMotionTraining(TextMotionEvaluator(**TINY))


# -- the shipped Motions7 evaluator ------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    """The shipped evaluator and its embeddings of 512 held-out real clips (seed 4; it trained on seed 0)."""
    from mgm.eval.suite import PRETRAINED

    evaluator = TextMotionEvaluator.from_pretrained(PRETRAINED / "motions7_evaluator")
    clips = make_motions(512, seed=4)
    with torch.no_grad():
        motion = evaluator.embed_motion(clips.features, clips.lengths).double()
        text = evaluator.embed_text(clips.captions).double()
    return evaluator, clips, motion, text


def _fid(a: torch.Tensor, b: torch.Tensor) -> float:
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


def test_shipped_evaluator_retrieves_held_out_captions(shipped):
    evaluator, _, motion, text = shipped
    assert evaluator.config["text_input"] == "captions" and evaluator.dim == 128
    top1, top2, top3 = r_precision(text, motion)  # batches of 32: chance is 1/32, 2/32, 3/32
    # Measured 0.615 / 0.820 / 0.904 on these 512 queries; thresholds 4 binomial SEs below,
    # SE = sqrt(p (1 - p) / 512) = 0.022 / 0.017 / 0.013.
    assert top1 >= 0.52 and top2 >= 0.75 and top3 >= 0.85, (top1, top2, top3)
    # Shuffled captions: about chance.
    shuffled = r_precision(text[torch.randperm(len(text), generator=torch.Generator().manual_seed(0))], motion)
    assert shuffled[0] < 0.15


def test_shipped_evaluator_fid_orderings(shipped):
    evaluator, clips, motion, _ = shipped
    # Zero up to rounding (never negative), relative to the embeddings' total variance.
    assert 0.0 <= _fid(motion, motion) <= 1e-9 * float(torch.cov(motion.double().T).trace())
    halves = _fid(motion[:256], motion[256:])
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        noise = torch.randn(256, clips.features.shape[1], 263, generator=g) * evaluator.std + evaluator.mean
        noise_fid = _fid(motion[:256], evaluator.embed_motion(noise, clips.lengths[256:]).double())
        one_class = {}
        for label in (CLASSES.index("walk"), CLASSES.index("wave")):
            only = make_motions(128, seed=5, labels=torch.full((128,), label))
            one_class[CLASSES[label]] = _fid(motion[:256], evaluator.embed_motion(only.features, only.lengths).double())
    # Measured: halves 4.95 (256 a side in 128 dims: mostly the estimate's bias; 0.78 at 512 a side),
    # noise 234, walk only 133, wave only 317.
    assert halves < 8.0, halves
    assert noise_fid > 15 * halves and min(one_class.values()) > 15 * halves, (halves, noise_fid, one_class)
