"""What the measured capacity units cost at DynamoDB's on-demand prices."""

from __future__ import annotations

#: On-demand list prices in us-east-1, dollars per million request units: in force since
#: AWS halved on-demand throughput prices on 1 November 2024.
READ_PRICE = 0.125
WRITE_PRICE = 0.625
REGION = "us-east-1"
#: When the prices above were taken.
PRICES_TAKEN = "26 November 2026"


def per_million_requests(read_units: float, write_units: float) -> float:
    """Dollars per million requests, from the read and write units of one request."""
    return read_units * READ_PRICE + write_units * WRITE_PRICE


def prices_sentence() -> str:
    return (
        f"DynamoDB on-demand prices in {REGION}: ${READ_PRICE} per million read request "
        f"units and ${WRITE_PRICE} per million write request units (the list prices since "
        f"1 November 2024, taken on {PRICES_TAKEN})"
    )
