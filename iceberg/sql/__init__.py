"""`riverbank sql`: Athena and Redshift SQL over the lake's Iceberg tables, answered by DuckDB.

Entry points live in :mod:`iceberg.sql.query` (``LakeQueryEngine``, ``run_sql``, ``row_counts``);
this package stays import-light so that the CLI starts fast.
"""
