"""The soak: the package under gunicorn, many users and devices, phases of DynamoDB faults,
every acknowledged write checked against a model. ``python -m benchmarks.soak --help``."""

#: What the app logs once a worker has loaded it (the soak times a killed worker's
#: replacement by it), and under which logger.
READY_MESSAGE = "app ready"
READY_LOGGER = "benchmarks.soak.app"
