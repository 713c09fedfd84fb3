import pytest
import torch

from mgm.models.text import HFTextEncoder, WordTextEncoder

CAPTIONS = ["a person walks forward slowly", "someone waves with the right hand", "a man jumps twice"]


def test_word_encoder_vocab_padding_and_round_trip(tmp_path):
    vocab = WordTextEncoder.build_vocab(CAPTIONS)
    assert vocab[:2] == ["<pad>", "<unk>"] and "walks" in vocab and "Walks" not in vocab
    torch.manual_seed(0)
    enc = WordTextEncoder(vocab, dim=32, depth=2, num_heads=4).eval()
    ids, mask = enc.tokenize(["A person WALKS quickly", "a man jumps"])
    assert ids.shape == (2, 4) and mask.tolist() == [[True] * 4, [True, True, True, False]]
    assert ids[0, 3] == 1  # "quickly" is not in the vocabulary
    with torch.no_grad():
        both = enc(["a person walks forward slowly", "a man jumps"])
        alone = enc("a man jumps")
    assert both.tokens.shape == (2, 5, 32) and both.pooled.shape == (2, 32)
    # Padding changes nothing: the short caption encodes the same alone and beside a longer one.
    torch.testing.assert_close(both.tokens[1, :3], alone.tokens[0])
    torch.testing.assert_close(both.pooled[1], alone.pooled[0])
    cond = both.condition()
    assert cond.context.shape == (2, 5, 32) and cond.context_mask.tolist()[1] == [True] * 3 + [False] * 2
    enc.save_pretrained(tmp_path / "text")
    loaded = WordTextEncoder.from_pretrained(tmp_path / "text")
    with torch.no_grad():
        torch.testing.assert_close(loaded("a man jumps").tokens, alone.tokens)


@pytest.mark.parametrize(
    "texts, match", [([], "non-empty list"), (["fine", "  "], r"texts\[1\]"), ([3], r"texts\[0\]")]
)
def test_empty_or_bad_captions_are_refused(texts, match):
    enc = WordTextEncoder(WordTextEncoder.build_vocab(CAPTIONS), dim=16, depth=1, num_heads=2)
    with pytest.raises(ValueError, match=match):
        enc(texts)


def _tiny_clip():
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    words = sorted({w for c in CAPTIONS for w in c.split()})
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for w in words:
        vocab[w + "</w>"] = len(vocab)
    for ch in sorted({ch for w in words for ch in w}):  # single characters, so unseen words still tokenize
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])  # transformers 5: objects, not file paths
    config = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, max_position_embeddings=32, eos_token_id=1, bos_token_id=0,
                            pad_token_id=1)  # fmt: skip
    torch.manual_seed(0)
    return CLIPTextModel(config), tokenizer


def test_hf_encoder_on_a_randomly_initialised_clip_text_tower(tmp_path):
    pytest.importorskip("transformers")
    model, tokenizer = _tiny_clip()
    enc = HFTextEncoder(model, tokenizer, max_length=32)
    out = enc(["a man jumps", "a person walks forward slowly"])
    assert out.tokens.shape[0] == 2 and out.tokens.shape[2] == 32 == enc.dim and out.pooled.shape == (2, 32)
    assert out.mask.dtype == torch.bool and out.mask[1].all() and not out.mask[0].all()
    assert not any(p.requires_grad for p in enc.parameters())
    # A local folder loads through from_pretrained (the CLIP checkpoint's text tower).
    model.save_pretrained(tmp_path / "clip")
    tokenizer.save_pretrained(tmp_path / "clip")
    loaded = HFTextEncoder.from_pretrained(tmp_path / "clip", max_length=32)
    torch.testing.assert_close(loaded("a man jumps").pooled, enc("a man jumps").pooled)
