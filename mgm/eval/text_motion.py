"""The text-motion evaluator of HumanML3D (Guo et al., CVPR 2022, "T2M"), written for mgm, and its loader.

Every text-to-motion paper since (T2M-GPT, MoMask, MMM) reports FID, Diversity, R-precision and
MM-Dist on the embeddings of this evaluator: a motion branch and a text branch trained so that a
motion lies near its own caption (Euclidean distance) in a shared co-embedding space.

- ``MovementConvEncoder``: features [B, T, D - 4] (the 4 foot-contact channels at the end of the
  263 are dropped) -> two Conv1d(kernel 4, stride 2, padding 1) + dropout + LeakyReLU(0.2) ->
  Linear: one "movement" code per 4 frames, [B, T // 4, latent].
- ``MotionEncoderBiGRUCo``: movement codes -> Linear -> a bidirectional GRU (learned initial
  state, sequences packed by their length // 4) -> MLP (Linear, LayerNorm, LeakyReLU, Linear) of
  the final forward and backward states -> motion embedding [B, E].
- ``TextEncoderBiGRUCo``: word vectors [B, L, W] (+ a Linear of the part-of-speech one-hots
  [B, L, 15] in the original) -> the same Linear / BiGRU / MLP -> text embedding [B, E].

``TextMotionEvaluator`` holds the three, with the sizes of the original as defaults, and the
feature normalisation the evaluator was trained with (``mean`` / ``std`` buffers: features are
given raw). Its text side is one of
- ``text_input="word_vectors"``: the original's. Captions become 300-d GloVe vectors and POS
  one-hots outside mgm (GloVe cannot be shipped); ``t2m_text_inputs`` builds both from HumanML3D's
  ``word/POS`` tokens and a word -> vector mapping the user loads, the way the original does;
- ``text_input="captions"``: captions as strings through a learned word embedding
  (``WordTextEncoder`` with no transformer blocks: its vocabulary, or hashed words), no POS. The
  shipped Motions7 evaluator (``mgm/pretrained/motions7_evaluator``) is of this kind, trained by
  ``configs/motion/evaluator_motions.yaml`` (``mgm.training.text_motion``).

``load_t2m_evaluator`` reads the original released checkpoint (``text_mot_match/model/finest.tar``)
with ``torch.load(..., weights_only=True)`` only: the attribute names here are the original's
parameter names, so its three state dicts load as they are.

Dimension legend: B batch, T frames, D = 263 feature dims, N = T // 4 movement codes, L words,
W word vector size, P POS one-hot size, E co-embedding size.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from mgm.io import PretrainedMixin
from mgm.models.text import WordTextEncoder, check_captions

UNIT_LENGTH = 4  # frames per movement code: the two stride-2 convolutions
FOOT_CONTACT_DIMS = 4  # the last 4 of the 263 features, which the evaluator does not see
TEXT_INPUTS = ("word_vectors", "captions")
CHECKPOINT_KEYS = ("movement_encoder", "motion_encoder", "text_encoder")
T2M_CHECKPOINT = "text_mot_match/model/finest.tar"

# The original's part-of-speech one-hot: spaCy's coarse tags, five "very important" word groups that
# override the tag, and OTHER (also for words without a vector). Order = one-hot index.
T2M_POS = (
    "VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV",
    "Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP", "OTHER",
)  # fmt: skip
T2M_VIP_WORDS = {
    "Loc_VIP": ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward", "back", "backward",
                "up", "down", "straight", "curve"),
    "Body_VIP": ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye", "knee", "shoulder",
                 "thigh"),
    "Obj_VIP": ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball", "basketball"),
    "Act_VIP": ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop", "dance", "jump",
                "turn", "stumble", "stop", "sit", "lift", "lower", "raise", "wash", "stand", "kneel", "stroll", "rub",
                "bend", "balance", "flap", "jog", "shuffle", "lean", "rotate", "spin", "spread", "climb"),
    "Desc_VIP": ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry", "sad", "happily",
                 "angrily", "sadly"),
}  # fmt: skip
T2M_MAX_TEXT_LEN = 20  # words kept per caption, before the sos / eos tokens


def _init_weights(module: nn.Module) -> None:
    # The original initialises every Linear / Conv1d with Xavier-normal weights and zero biases.
    if isinstance(module, (nn.Linear, nn.Conv1d)):
        nn.init.xavier_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class MovementConvEncoder(nn.Module):
    """features [B, T, input_size] -> movement codes [B, T // 4, output_size]."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, dropout: float = 0.2):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1), nn.Dropout(dropout), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1), nn.Dropout(dropout), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.out_net = nn.Linear(output_size, output_size)
        self.apply(_init_weights)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out_net(self.main(features.transpose(1, 2)).transpose(1, 2))


class _BiGRUEncoder(nn.Module):
    """inputs [B, S, input_size] of ``lengths`` [B] -> Linear -> BiGRU -> MLP of the last states -> [B, output_size]."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(
            nn.Linear(2 * hidden_size, hidden_size), nn.LayerNorm(hidden_size), nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, output_size),
        )  # fmt: skip
        self.apply(_init_weights)
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden_size))  # learned initial state (forward, backward)

    def _encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.input_emb(inputs), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, self.hidden.expand(-1, len(inputs), -1).contiguous())  # (2, B, hidden)
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


class MotionEncoderBiGRUCo(_BiGRUEncoder):
    """movement codes [B, N, input_size], ``lengths`` [B] (codes, i.e. frames // 4) -> motion embedding [B, E]."""

    def forward(self, movements: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._encode(movements, lengths)


class TextEncoderBiGRUCo(_BiGRUEncoder):
    """word vectors [B, L, word_size] (+ POS one-hots [B, L, pos_size] when ``pos_size``), ``lengths`` [B]
    -> text embedding [B, E]."""

    def __init__(self, word_size: int, pos_size: int, hidden_size: int, output_size: int):
        super().__init__(word_size, hidden_size, output_size)
        self.pos_emb = nn.Linear(pos_size, word_size) if pos_size else None
        if self.pos_emb is not None:
            _init_weights(self.pos_emb)

    def forward(self, word_embs: torch.Tensor, pos_onehot: torch.Tensor | None, lengths: torch.Tensor) -> torch.Tensor:
        inputs = word_embs if self.pos_emb is None else word_embs + self.pos_emb(pos_onehot)
        return self._encode(inputs, lengths)


class TextMotionEvaluator(PretrainedMixin, nn.Module):
    """The T2M text-motion evaluator: ``embed_motion`` (raw features) and ``embed_text`` -> [B, E].

    Args (the defaults are the original's sizes for HumanML3D):
        text_input: "word_vectors" (the original: precomputed word vectors + POS one-hots) or
            "captions" (strings through a learned word embedding of size ``dim_word``, no POS).
        vocab: "captions": the words known (``WordTextEncoder.build_vocab``); None hashes words into
            ``num_buckets``. ``max_words``: longer captions are cut.
        dim_pose: feature size (263); the motion branch sees the first ``dim_pose - 4``.
        dim_word, dim_pos_ohot: word vector and POS one-hot sizes (300, 15; POS only for "word_vectors").
        dim_movement_enc_hidden, dim_movement_latent: the movement conv encoder's widths (512, 512).
        dim_motion_hidden, dim_text_hidden: the GRUs' hidden sizes (1024, 512).
        dim_coemb_hidden: the co-embedding size E (512).
        dropout: the movement encoder's dropout (0.2; off in eval mode).
    """

    def __init__(
        self,
        text_input: str = "word_vectors",
        vocab: list[str] | None = None,
        num_buckets: int = 4096,
        max_words: int = 32,
        dim_pose: int = 263,
        dim_word: int = 300,
        dim_pos_ohot: int = len(T2M_POS),
        dim_movement_enc_hidden: int = 512,
        dim_movement_latent: int = 512,
        dim_motion_hidden: int = 1024,
        dim_text_hidden: int = 512,
        dim_coemb_hidden: int = 512,
        dropout: float = 0.2,
    ):
        super().__init__()
        if text_input not in TEXT_INPUTS:
            raise ValueError(f"text_input={text_input!r}: expected one of {TEXT_INPUTS}")
        if dim_pose <= FOOT_CONTACT_DIMS:
            raise ValueError(f"dim_pose={dim_pose}: expected more than the {FOOT_CONTACT_DIMS} foot-contact dims")
        if vocab is not None and text_input != "captions":
            raise ValueError("vocab: only a text_input='captions' evaluator has a vocabulary")
        self.config = {
            "text_input": text_input, "vocab": None if vocab is None else list(vocab), "num_buckets": num_buckets,
            "max_words": max_words, "dim_pose": dim_pose, "dim_word": dim_word, "dim_pos_ohot": dim_pos_ohot,
            "dim_movement_enc_hidden": dim_movement_enc_hidden, "dim_movement_latent": dim_movement_latent,
            "dim_motion_hidden": dim_motion_hidden, "dim_text_hidden": dim_text_hidden,
            "dim_coemb_hidden": dim_coemb_hidden, "dropout": dropout,
        }  # fmt: skip
        self.text_input, self.dim_pose = text_input, dim_pose
        self.register_buffer("mean", torch.zeros(dim_pose))
        self.register_buffer("std", torch.ones(dim_pose))
        self.movement_encoder = MovementConvEncoder(
            dim_pose - FOOT_CONTACT_DIMS, dim_movement_enc_hidden, dim_movement_latent, dropout
        )
        self.motion_encoder = MotionEncoderBiGRUCo(dim_movement_latent, dim_motion_hidden, dim_coemb_hidden)
        pos_size = dim_pos_ohot if text_input == "word_vectors" else 0
        self.text_encoder = TextEncoderBiGRUCo(dim_word, pos_size, dim_text_hidden, dim_coemb_hidden)
        self.word_embedding = (
            WordTextEncoder(vocab, dim=dim_word, depth=0, max_words=max_words, num_buckets=num_buckets)
            if text_input == "captions"
            else None
        )

    @property
    def dim(self) -> int:
        """E, the size of the embeddings."""
        return self.config["dim_coemb_hidden"]

    def set_statistics_(self, mean, std) -> TextMotionEvaluator:
        """Set the normalisation ``mean`` / ``std`` [dim_pose] (tensors, arrays or .npy paths)."""
        mean, std = _statistic(mean, "mean", self.dim_pose), _statistic(std, "std", self.dim_pose)
        if (std <= 0).any():
            raise ValueError(f"std: entry {int((std <= 0).nonzero()[0])} is not positive; expected std > 0")
        self.mean.copy_(mean)
        self.std.copy_(std)
        return self

    # -- motion ---------------------------------------------------------------------------------

    def embed_motion(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Raw (not normalised) features [B, T, D], ``lengths`` [B] (frames, 4 to T; default T) -> [B, E].

        Normalised with the evaluator's ``mean`` / ``std``; frames past a clip's length are ignored.
        """
        features, lengths = self._check_motion(features, lengths)
        return self.embed_normalised_motion((features - self.mean) / self.std, lengths)

    def embed_normalised_motion(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """As ``embed_motion`` for features already normalised with ``mean`` / ``std`` (the training path)."""
        real = torch.arange(features.shape[1], device=features.device)[None, :] < lengths.to(features.device)[:, None]
        features = features[..., : self.dim_pose - FOOT_CONTACT_DIMS] * real[..., None]  # padding reads as 0
        # The last code's receptive field reaches 3 frames past a clip's end: make those zeros (as the
        # original's padding is) for every clip, so an embedding does not depend on the batch's length.
        features = nn.functional.pad(features, (0, 0, 0, UNIT_LENGTH))
        movements = self.movement_encoder(features)  # (B, T // 4 + 1, latent)
        return self.motion_encoder(movements, lengths // UNIT_LENGTH)

    def _check_motion(self, features, lengths) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(features, torch.Tensor) or not features.is_floating_point() or features.dim() != 3:
            raise ValueError(
                f"features: got {getattr(features, 'shape', type(features).__name__)}; expected a float tensor "
                f"[B, T, {self.dim_pose}]"
            )
        if features.shape[-1] != self.dim_pose:
            raise ValueError(f"features: got shape {tuple(features.shape)}; expected [B, T, {self.dim_pose}]")
        if not torch.isfinite(features).all():
            raise ValueError("features: contains NaN or infinite values; expected finite features")
        frames = features.shape[1]
        if lengths is None:
            lengths = torch.full((len(features),), frames)
        lengths = torch.as_tensor(lengths)
        if lengths.shape != (len(features),) or lengths.dtype.is_floating_point:
            raise ValueError(f"lengths: got {lengths.tolist()}; expected {len(features)} whole frame counts")
        if (lengths < UNIT_LENGTH).any() or (lengths > frames).any():
            raise ValueError(f"lengths: got {lengths.tolist()}; expected frame counts from {UNIT_LENGTH} to {frames}")
        return features.to(self.mean), lengths.long()

    # -- text -----------------------------------------------------------------------------------

    def embed_text(
        self,
        texts: Sequence[str] | str | None = None,
        word_embs: torch.Tensor | None = None,
        pos_onehot: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Text embeddings [B, E].

        A "captions" evaluator takes ``texts`` (captions). A "word_vectors" evaluator (the original)
        takes ``word_embs`` [B, L, W], ``pos_onehot`` [B, L, P] and ``lengths`` [B] (words per
        caption, sos / eos included), e.g. from ``t2m_text_inputs``.
        """
        if self.text_input == "captions":
            if texts is None or word_embs is not None:
                raise ValueError("texts: this evaluator reads captions; give texts=[...], not word vectors")
            encoded = self.word_embedding(check_captions(texts))
            return self.text_encoder(encoded.tokens, None, encoded.mask.sum(1))
        if texts is not None:
            raise ValueError(
                "texts: this evaluator (the original T2M text side) reads GloVe word vectors and POS one-hots, "
                "not captions; give word_embs, pos_onehot and lengths (see t2m_text_inputs)"
            )
        word_embs, pos_onehot, lengths = self._check_words(word_embs, pos_onehot, lengths)
        return self.text_encoder(word_embs, pos_onehot, lengths)

    def _check_words(self, word_embs, pos_onehot, lengths):
        c = self.config
        for name, value, size in (
            ("word_embs", word_embs, c["dim_word"]),
            ("pos_onehot", pos_onehot, c["dim_pos_ohot"]),
        ):
            if not isinstance(value, torch.Tensor) or value.dim() != 3 or value.shape[-1] != size:
                raise ValueError(
                    f"{name}: got {getattr(value, 'shape', value)}; expected a float tensor [B, L, {size}]"
                )
        if pos_onehot.shape[:2] != word_embs.shape[:2]:
            raise ValueError(
                f"pos_onehot: shape {tuple(pos_onehot.shape)} does not match word_embs {tuple(word_embs.shape)}"
            )
        lengths = torch.as_tensor(lengths) if lengths is not None else None
        if lengths is None or lengths.shape != (len(word_embs),) or lengths.dtype.is_floating_point:
            raise ValueError(f"lengths: got {lengths}; expected {len(word_embs)} whole word counts")
        if (lengths < 1).any() or (lengths > word_embs.shape[1]).any():
            raise ValueError(f"lengths: got {lengths.tolist()}; expected word counts from 1 to {word_embs.shape[1]}")
        return word_embs.to(self.mean), pos_onehot.to(self.mean), lengths.long()


def _statistic(value, name: str, size: int) -> torch.Tensor:
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"{name}={str(path)!r}: no such file (expected a .npy of {size} values)")
        value = np.load(path, allow_pickle=False)
    tensor = torch.as_tensor(np.asarray(value, dtype=np.float32))
    if tensor.shape != (size,) or not torch.isfinite(tensor).all():
        raise ValueError(f"{name}: got shape {tuple(tensor.shape)}; expected {size} finite values")
    return tensor


# ----------------------------------------------------------------------------------------------
# The original checkpoint and its text inputs


def t2m_pos_index(word: str, tag: str) -> int:
    """The original's POS one-hot index of a ``word`` with spaCy tag ``tag``: a VIP group the word is
    in first, else the tag, else OTHER."""
    for group, words in T2M_VIP_WORDS.items():
        if word in words:
            return T2M_POS.index(group)
    return T2M_POS.index(tag) if tag in T2M_POS else T2M_POS.index("OTHER")


def t2m_text_inputs(
    token_lists: Sequence[Sequence[str]],
    word_vectors: Mapping[str, Sequence[float]],
    max_text_len: int = T2M_MAX_TEXT_LEN,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """HumanML3D ``word/POS`` tokens (``Caption.tokens``) -> (word_embs [B, L, W], pos_onehot [B, L, 15],
    lengths [B]) for the original evaluator's ``embed_text``, as its evaluation data builds them.

    Each caption keeps its first ``max_text_len`` tokens between ``sos/OTHER`` and ``eos/OTHER`` and is
    padded with ``unk/OTHER`` to ``max_text_len + 2``. ``word_vectors`` maps words to GloVe vectors
    (the evaluator's ``glove/our_vab_*`` files, read by the user) and must hold "sos", "eos" and
    "unk"; a word without a vector becomes "unk" with POS OTHER.
    """
    for needed in ("sos", "eos", "unk"):
        if needed not in word_vectors:
            raise ValueError(f"word_vectors: no vector for {needed!r}; expected the T2M GloVe vocabulary")
    rows_vec, rows_pos, lengths = [], [], []
    for i, tokens in enumerate(token_lists):
        pairs = []
        for token in list(tokens)[:max_text_len]:
            word, sep, tag = token.rpartition("/")
            if not sep:
                raise ValueError(f"token_lists[{i}]: token {token!r}; expected 'word/POS'")
            pairs.append((word, tag))
        pairs = [("sos", "OTHER"), *pairs, ("eos", "OTHER")]
        lengths.append(len(pairs))
        pairs += [("unk", "OTHER")] * (max_text_len + 2 - len(pairs))
        vectors, positions = [], []
        for word, tag in pairs:
            known = word in word_vectors
            vectors.append(np.asarray(word_vectors[word if known else "unk"], dtype=np.float32))
            positions.append(
                t2m_pos_index(word, tag) if known and word not in ("sos", "eos", "unk") else len(T2M_POS) - 1
            )
        rows_vec.append(np.stack(vectors))
        rows_pos.append(np.eye(len(T2M_POS), dtype=np.float32)[positions])
    if not lengths:
        raise ValueError("token_lists: empty; expected at least one caption's tokens")
    return torch.from_numpy(np.stack(rows_vec)), torch.from_numpy(np.stack(rows_pos)), torch.tensor(lengths)


def _find_checkpoint(path: Path) -> Path:
    if path.is_dir():
        for candidate in (path / T2M_CHECKPOINT, path / "model" / "finest.tar", path / "finest.tar"):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"path={str(path)!r}: no {T2M_CHECKPOINT} (or model/finest.tar, finest.tar) in it")
    if not path.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: no such file (expected the T2M evaluator's {T2M_CHECKPOINT})")
    return path


def _shape(state: dict, part: str, key: str, dims: int) -> tuple[int, ...]:
    tensor = state.get(key)
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != dims:
        raise ValueError(f"checkpoint[{part!r}]: no {dims}-D tensor {key!r}; not a T2M evaluator's state dict")
    return tuple(tensor.shape)


def load_t2m_evaluator(
    path: str | os.PathLike, mean=None, std=None, map_location: str | torch.device = "cpu"
) -> TextMotionEvaluator:
    """The original HumanML3D (or KIT-ML) evaluator from its released checkpoint -> a "word_vectors"
    ``TextMotionEvaluator`` in eval mode.

    ``path``: ``text_mot_match/model/finest.tar`` (a torch.save'd dict with "movement_encoder",
    "motion_encoder" and "text_encoder" state dicts), or a folder holding it. Read with
    ``weights_only=True``: nothing but tensors and plain containers is unpickled. The sizes are
    read off the tensors. ``mean`` / ``std``: the statistics the evaluator's features were
    normalised with (its ``meta/mean.npy``, ``meta/std.npy``; arrays, tensors or paths); without
    them features must be given already normalised. Save the result with ``save_pretrained`` to
    use it as a folder.
    """
    path = _find_checkpoint(Path(path))
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: holds objects beyond tensors and plain containers; refused ({e})") from e
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable torch checkpoint ({e})") from e
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: holds a {type(checkpoint).__name__}; expected a dict of state dicts")
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(checkpoint.get(key), dict)]
    if missing:
        raise ValueError(
            f"{path}: no {missing} state dict(s); expected keys {list(CHECKPOINT_KEYS)} (found {sorted(checkpoint)})"
        )
    movement, motion, text = (checkpoint[key] for key in CHECKPOINT_KEYS)
    hidden, pose_in, _ = _shape(movement, "movement_encoder", "main.0.weight", 3)
    latent = _shape(movement, "movement_encoder", "main.3.weight", 3)[0]
    motion_hidden = _shape(motion, "motion_encoder", "input_emb.weight", 2)[0]
    coemb = _shape(motion, "motion_encoder", "output_net.3.weight", 2)[0]
    word, pos = _shape(text, "text_encoder", "pos_emb.weight", 2)
    text_hidden = _shape(text, "text_encoder", "input_emb.weight", 2)[0]
    evaluator = TextMotionEvaluator(
        "word_vectors", dim_pose=pose_in + FOOT_CONTACT_DIMS, dim_word=word, dim_pos_ohot=pos,
        dim_movement_enc_hidden=hidden, dim_movement_latent=latent, dim_motion_hidden=motion_hidden,
        dim_text_hidden=text_hidden, dim_coemb_hidden=coemb,
    )  # fmt: skip
    for key in CHECKPOINT_KEYS:
        try:
            missing_keys, unexpected = getattr(evaluator, key).load_state_dict(checkpoint[key], strict=False)
        except RuntimeError as e:  # shape mismatches
            raise ValueError(f"{path}: checkpoint[{key!r}] does not fit the T2M architecture ({e})") from e
        if missing_keys or unexpected:
            raise ValueError(
                f"{path}: checkpoint[{key!r}] does not fit the T2M architecture "
                f"(missing {sorted(missing_keys)[:5]}, unexpected {sorted(unexpected)[:5]})"
            )
    if (mean is None) != (std is None):
        raise ValueError("mean, std: got only one of them; expected both or neither")
    if mean is not None:
        evaluator.set_statistics_(mean, std)
    return evaluator.to(map_location).eval()


__all__ = [
    "CHECKPOINT_KEYS",
    "MotionEncoderBiGRUCo",
    "MovementConvEncoder",
    "T2M_POS",
    "TextEncoderBiGRUCo",
    "TextMotionEvaluator",
    "load_t2m_evaluator",
    "t2m_pos_index",
    "t2m_text_inputs",
]
