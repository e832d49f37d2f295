"""Recipes: the measurements behind figures of docs/performance.md that `make bench` does not
make. Each module's docstring says what it measures and how to run it
(`python -m loadtests.recipes.<name> --help`).

- `fixed_rate`     one or two server configurations at a fixed rate, alternated
- `target_ab`      an endpoint's target procedure (knee, 50 %, 70 %) on the product and a variant
- `feed_parts`     the feed's p99 taken apart: DynamoDB Local alone, the Query in the service
- `dynamo_query`   the DynamoDB Query's client CPU, and where py-spy finds it
- `asgi_cpu`       a similar-items request in-process against the floor route, warm and cold
- `catalog_client` building a catalog lookup; the cyclic garbage a lookup leaves
- `catalog_cache`  a cache hit with and without reordering; what a reload slice costs the loop
- `stages`         a feed request's stages timed in-process, one request at a time
- `gclog`          the bench server's GC log (`--gc-log`), summarized per generation
- `embedded_ab`    two configurations of `python -m app` on embedded data (or the guarded
                   protocol against uvicorn's plain one), alternated at a fixed rate

The first three start bench servers (`loadtests.bench`, through `_bench`) and need the local
stack up and loaded, as `make dev` leaves it, and vegeta (`make tools`).
"""
