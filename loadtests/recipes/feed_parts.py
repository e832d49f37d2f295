"""What the feed's p99 is made of: DynamoDB Local answering the feed's Query alone, then the
feed through a bench server at a fixed rate, with the same Query inside the service, the
service's own request histogram and the event-loop lag (its /metrics, quantiles
interpolated in buckets) beside vegeta's latencies. Prints p50 / p95 / p99 of each, in ms.

    python -m loadtests.recipes.feed_parts [--query-rate 180] [--rate 170] [--seconds 30]

Needs the local stack up and loaded (as `make dev` leaves it) and vegeta (`make tools`).
The Query alone is posted by vegeta for the users of the feed's targets file, signed with a
signature DynamoDB Local does not check.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
from collections.abc import Sequence

from app.config import Settings
from loadtests.bench import plan, vegeta
from loadtests.bench.prom import HistogramDelta
from loadtests.bench.variants import PRODUCT
from loadtests.recipes import _bench

AUTH = (
    "AWS4-HMAC-SHA256 Credential=local/20261129/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=00"
)


def query_target(user_id: str, *, endpoint: str, table: str, limit: int) -> str:
    """The feed's Query (`DynamoInteractions.recent`) as one vegeta target."""
    body = {
        "TableName": table,
        "Limit": limit,
        "ConsistentRead": True,
        "KeyConditionExpression": "user_id = :u",
        "ScanIndexForward": False,
        "ExpressionAttributeValues": {":u": {"S": user_id}},
        "ProjectionExpression": "item_id, event_type, ts_ms",
    }
    return json.dumps(
        {
            "method": "POST",
            "url": endpoint.rstrip("/") + "/",
            "body": base64.b64encode(json.dumps(body).encode()).decode(),
            "header": {
                "Content-Type": ["application/x-amz-json-1.0"],
                "X-Amz-Target": ["DynamoDB_20120810.Query"],
                "X-Amz-Date": ["20261129T170000Z"],
                "Authorization": [AUTH],
            },
        }
    )


def _row(name: str, p50: float | None, p95: float | None, p99: float | None) -> str:
    cells = " ".join(f"{v:6.2f}" if v is not None else "     -" for v in (p50, p95, p99))
    return f"{name:<40} {cells}"


def _seconds(h: HistogramDelta | None) -> tuple[float | None, ...]:
    if h is None:
        return (None, None, None)
    return tuple(None if (v := h.quantile(q)) is None else v * 1000 for q in (0.5, 0.95, 0.99))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.recipes.feed_parts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _bench.add_arguments(parser)
    parser.add_argument("--query-rate", type=float, default=180.0, help="Queries per second")
    parser.add_argument("--rate", type=float, default=170.0, help="feed requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="each of the two runs")
    args = parser.parse_args(argv)

    bench = _bench.open_bench(args)
    settings = Settings.from_env(bench.env)
    with bench.server(PRODUCT) as (server, targets):
        feed = targets["feed"]
        users = re.findall(r"/users/([^/]+)/", feed.read_text())
        queries = feed.with_name("dynamodb-query.jsonl")
        queries.write_text(
            "".join(
                query_target(
                    user,
                    endpoint=settings.dynamodb_endpoint_url,
                    table=settings.dynamodb_table,
                    limit=settings.history_limit,
                )
                + "\n"
                for user in users
            )
        )
        alone = vegeta.run(
            bench.vegeta,
            vegeta.Attack.constant(queries, args.query_rate, args.seconds),
            bench.run.work_dir / "vegeta",
            "dynamodb-alone",
        )
        bench.warm_up(server, PRODUCT, feed)
        attack = vegeta.Attack.constant(
            feed, args.rate, args.seconds, max_workers=plan.OPEN_LOOP_MAX_WORKERS
        )
        m = bench.measure(server, PRODUCT, "feed", attack, "fixed", "parts")
    assert m.metrics is not None
    routes = m.metrics.server_requests
    route = max(routes.values(), key=lambda h: h.count) if routes else None
    print(f"{'where (ms)':<40} {'p50':>6} {'p95':>6} {'p99':>6}")
    print(_row(f"DynamoDB Local alone, {args.query_rate:g} Queries/s", *_percentiles(alone)))
    query = m.metrics.dependencies.get("dynamodb/query")
    print(_row(f"the Query inside the service, {args.rate:g} feed/s", *_seconds(query)))
    print(_row("the service's request histogram", *_seconds(route)))
    print(_row("vegeta", *_percentiles(m.result)))
    print(_row("event-loop lag", *_seconds(m.metrics.loop_lag)))
    for problem in bench.run.problems:
        print(f"problem: {problem}")


def _percentiles(result: vegeta.Result) -> tuple[float | None, ...]:
    return tuple(result.percentile(q) for q in (50, 95, 99))


if __name__ == "__main__":
    main()
