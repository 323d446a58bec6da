"""Cost and speed of Flask session implementations on a local DynamoDB-compatible engine."""
