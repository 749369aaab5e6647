"""Table definitions and schema migrations of the pricelab DuckDB file."""

from __future__ import annotations

SCHEMA_VERSION = 1

# Each entry migrates a database from version (index) to version (index + 1).
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
        """CREATE TABLE IF NOT EXISTS sales (
            item_id VARCHAR NOT NULL, market VARCHAR NOT NULL, date DATE NOT NULL,
            price DOUBLE NOT NULL, quantity BIGINT NOT NULL, promo TINYINT, unit_cost DOUBLE)""",
        """CREATE TABLE IF NOT EXISTS items (
            item_id VARCHAR NOT NULL, category VARCHAR, brand VARCHAR, boutique_id VARCHAR)""",
        """CREATE TABLE IF NOT EXISTS costs (
            item_id VARCHAR NOT NULL, market VARCHAR, unit_cost DOUBLE NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS markets (
            market VARCHAR NOT NULL, currency VARCHAR, fx_rate DOUBLE NOT NULL, vat_rate DOUBLE)""",
        """CREATE TABLE IF NOT EXISTS inventory (
            item_id VARCHAR NOT NULL, market VARCHAR, stock DOUBLE NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS runs (
            run_id VARCHAR PRIMARY KEY, command VARCHAR NOT NULL, status VARCHAR NOT NULL,
            parameters VARCHAR, inputs VARCHAR, input_fingerprint VARCHAR, parents VARCHAR,
            version VARCHAR, git_commit VARCHAR, argv VARCHAR,
            started_at TIMESTAMP, ended_at TIMESTAMP, summary VARCHAR)""",
    ],
]

INPUT_TABLES: tuple[str, ...] = ("sales", "items", "costs", "markets", "inventory")
