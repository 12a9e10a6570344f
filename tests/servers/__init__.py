"""Real servers the suite starts around its test server: a PgBouncer and a hot standby."""
