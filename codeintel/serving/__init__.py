"""Read-only access to the published database: the MCP server and the file dumps.

Nothing here writes to a database, builds derived data or imports prefect: the server answers
from what the pipeline published (`snapshot`), in small, deterministic, snapshot-stamped answers
(`render`); `dump` writes the published tables to Parquet/JSONL for other tools.
"""
