"""mgm: masked-token generation across modalities.

One masked transformer, one set of mask schedules and one set of decoders work on discrete
tokens ``codes: LongTensor[B, K, N]`` from any modality tokenizer. Subpackages are imported
on demand (``from mgm.decoding import maskgit_decode``), so ``import mgm`` stays cheap.
"""

__version__ = "0.1.0"
