"""PostgreSQL access: pool, migrations, queries (the only place with SQL besides sql/)."""
