"""The soak: the package under gunicorn, many users and devices, phases of DynamoDB faults,
every acknowledged write checked against a model. ``python -m benchmarks.soak --help``."""
