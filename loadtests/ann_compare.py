"""Compare approximate-nearest-neighbour libraries on the embeddings model's workload.

    python -m loadtests.ann_compare --library faiss --count 100000 [--m 32 --ef-construction 200]
                                    [--ef 64,128,256,512] [--vectors FILE.npz] [--threads 2]
    python -m loadtests.ann_compare --library faiss-ivfpq --count 1000000 [--lists N]
                                    [--refine 8] [--ef 256,512,1024,2048] [--threads 1]

One library per run (run each in its own process, so resident memory is its own): build an
inner-product index over unit vectors of dimension 64 (random normal, or the rows of an
embeddings file), then answer 200 queries one at a time at each `--ef`, and report the build
time, the resident memory the index added, the query latency (p50, p99) and recall@50
against exact search (numpy, all vectors). Libraries: `faiss` (faiss-cpu, the service's),
`hnswlib` and `usearch` build an HNSW graph (`--m`, `--ef-construction`; `--ef` is the search
breadth); the last two are not project dependencies (`pip install hnswlib usearch` into a
scratch environment to compare them). `faiss-ivf` (IndexIVFFlat) and `faiss-ivfpq` (inverted
lists of 4-bit codes, one per dimension, scanned with fast-scan, the best `--refine` × 50
re-ranked exactly) cluster the vectors into `--lists` lists (default 4 × sqrt(count)) by
k-means on 40 vectors a list; there `--ef` is the number of lists searched (nprobe).
docs/embeddings.md has the table.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from scripts.stats import percentile

K = 50
QUERIES = 200


def _resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 1e6


def _unit(matrix: np.ndarray) -> np.ndarray:
    unit: np.ndarray = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _build(
    library: str, vectors: np.ndarray, m: int, ef_construction: int, threads: int
) -> Callable[[np.ndarray, int], np.ndarray]:
    count, dim = vectors.shape
    if library == "faiss":
        import faiss

        faiss.omp_set_num_threads(threads)
        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.add(vectors)
        faiss.omp_set_num_threads(1)

        def search(query: np.ndarray, ef: int) -> np.ndarray:
            index.hnsw.efSearch = ef
            found: np.ndarray = index.search(query[None, :], K)[1][0]
            return found

        return search
    if library == "hnswlib":
        import hnswlib

        graph = hnswlib.Index(space="ip", dim=dim)
        graph.init_index(max_elements=count, ef_construction=ef_construction, M=m)
        graph.set_num_threads(threads)
        graph.add_items(vectors, np.arange(count))
        graph.set_num_threads(1)

        def search(query: np.ndarray, ef: int) -> np.ndarray:
            graph.set_ef(ef)
            return np.asarray(graph.knn_query(query, k=K)[0][0])

        return search
    if library == "usearch":
        from usearch.index import Index

        index = Index(ndim=dim, metric="ip", dtype="f32", connectivity=m,
                      expansion_add=ef_construction)  # fmt: skip
        index.add(np.arange(count), vectors, threads=threads)

        def search(query: np.ndarray, ef: int) -> np.ndarray:
            index.expansion_search = ef
            return np.asarray(index.search(query, K).keys)

        return search
    raise SystemExit(f"unknown library {library!r}")


def _build_ivf(
    library: str, vectors: np.ndarray, lists: int, refine: int, threads: int
) -> Callable[[np.ndarray, int], np.ndarray]:
    import faiss

    count, dim = vectors.shape
    faiss.omp_set_num_threads(threads)
    lib: Any = faiss  # its stubs lack the search parameters' classes and keywords
    index: Any
    ivf: Any
    quantizer = faiss.IndexFlatIP(dim)
    if library == "faiss-ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
        ivf = index
    else:
        ivf = faiss.IndexIVFPQFastScan(quantizer, dim, lists, dim, 4, faiss.METRIC_INNER_PRODUCT)
        index = faiss.IndexRefineFlat(ivf)
    ivf.cp.niter = 10
    sample = np.random.default_rng(1).choice(count, size=min(count, 40 * lists), replace=False)
    index.train(vectors[np.sort(sample)])
    index.add(vectors)
    faiss.omp_set_num_threads(1)

    def search_lists(query: np.ndarray, nprobe: int) -> np.ndarray:
        params = lib.SearchParametersIVF(nprobe=nprobe)
        if library == "faiss-ivfpq":
            params = lib.IndexRefineSearchParameters(k_factor=refine, base_index_params=params)
        found: np.ndarray = index.search(query[None, :], K, params=params)[1][0]
        return found

    return search_lists


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--library",
        required=True,
        choices=("faiss", "hnswlib", "usearch", "faiss-ivf", "faiss-ivfpq"),
    )
    parser.add_argument("--count", type=int, default=100_000, help="random vectors")
    parser.add_argument("--vectors", type=Path, help="an embeddings .npz instead of random")
    parser.add_argument("--m", type=int, default=32, help="graph degree")
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", default="64,128,256,512", help="search breadths (IVF: nprobe)")
    parser.add_argument("--threads", type=int, default=2, help="build threads")
    parser.add_argument("--lists", type=int, default=0, help="IVF lists (0: 4 × sqrt(count))")
    parser.add_argument("--refine", type=int, default=8, help="faiss-ivfpq: re-ranked × 50")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.vectors is not None:
        with np.load(args.vectors, allow_pickle=False) as data:
            vectors = _unit(data["vectors"])
        picks = rng.choice(len(vectors), size=(QUERIES, 3))
        queries = _unit(vectors[picks].mean(axis=1))  # users: means of a few items
    else:
        vectors = _unit(rng.standard_normal((args.count, 64), dtype=np.float32))
        queries = _unit(rng.standard_normal((QUERIES, 64), dtype=np.float32))
    similarity = queries @ vectors.T
    exact = np.argpartition(-similarity, K, axis=1)[:, :K]
    del similarity
    # The library's own code is not the index's memory.
    importlib.import_module(
        {"hnswlib": "hnswlib", "usearch": "usearch.index"}.get(args.library, "faiss")
    )
    before = _resident_mb()
    started = time.perf_counter()
    ivf = args.library.startswith("faiss-ivf")
    lists = args.lists or round(4 * len(vectors) ** 0.5)
    if ivf:
        search = _build_ivf(args.library, vectors, lists, args.refine, args.threads)
    else:
        search = _build(args.library, vectors, args.m, args.ef_construction, args.threads)
    result: dict[str, Any] = {
        "library": args.library,
        "vectors": len(vectors),
        "dim": vectors.shape[1],
        **(
            {"lists": lists, "refine": args.refine}
            if ivf
            else {"m": args.m, "ef_construction": args.ef_construction}
        ),
        "build_s": round(time.perf_counter() - started, 1),
        "index_mb": round(_resident_mb() - before),
        "searches": [],
    }
    for ef in (int(value) for value in args.ef.split(",")):
        latencies = []
        recalls = []
        for row, query in enumerate(queries):
            started = time.perf_counter()
            found = search(query, ef)
            latencies.append((time.perf_counter() - started) * 1e6)
            recalls.append(len(set(found.tolist()) & set(exact[row].tolist())) / K)
        result["searches"].append(
            {
                "nprobe" if ivf else "ef": ef,
                "recall_at_50": round(float(np.mean(recalls)), 3),
                "p50_us": round(percentile(latencies, 50)),
                "p99_us": round(percentile(latencies, 99)),
            }
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
