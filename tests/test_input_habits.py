"""A new user's hand-made files: habits that are forgiven, and habits that get a hint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pricelab.store import Store
from tests.conftest import CliResult

SALES = (
    "item_id,market,date,price,quantity\n"
    "A,US,2024-01-01,10.50,3\n"
    "A,US,2024-01-08,11.00,2\n"
    "B,GB,2024-01-01,20.00,1\n"
)


def _ingest(cli: Callable[..., CliResult], tmp_path: Path, **files: Path) -> CliResult:
    args: list[object] = ["ingest", "--db", tmp_path / "h.duckdb", "--json"]
    for kind, path in files.items():
        args += [f"--{kind}", path]
    return cli(*args)


def _sales(db: Path) -> pl.DataFrame:
    with Store.open(db, read_only=True) as store:
        return store.query("SELECT * FROM sales ORDER BY item_id, date")


@pytest.mark.parametrize(
    "name, data",
    [
        ("trailing_blank_line", (SALES + "\n").encode()),
        ("two_blank_lines_and_spaces", (SALES + "\n   \n").encode()),
        ("utf8_bom", b"\xef\xbb\xbf" + SALES.encode()),
        ("crlf", SALES.replace("\n", "\r\n").encode()),
        ("crlf_blank_line", (SALES + "\n").replace("\n", "\r\n").encode()),
        ("trailing_spaces", SALES.replace("\n", "  \n").replace(",GB,", ",GB ,").encode()),
        ("bom_crlf_blank", b"\xef\xbb\xbf" + (SALES + "\n").replace("\n", "\r\n").encode()),
    ],
)
def test_habits_of_real_files_load(
    tmp_path: Path, cli: Callable[..., CliResult], name: str, data: bytes
) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes(data)
    res = _ingest(cli, tmp_path, sales=path)
    assert res.exit_code == 0, res.stderr
    got = _sales(tmp_path / "h.duckdb")
    assert got["item_id"].to_list() == ["A", "A", "B"]
    assert got["market"].to_list() == ["US", "US", "GB"]
    assert got["price"].to_list() == [10.5, 11.0, 20.0]
    assert got["quantity"].to_list() == [3, 2, 1]


def test_blank_line_in_the_middle_still_names_its_line(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    lines = SALES.splitlines()
    path = tmp_path / "sales.csv"
    path.write_text("\n".join([*lines[:2], ",,,,", *lines[2:]]) + "\n")
    res = _ingest(cli, tmp_path, sales=path)
    assert res.exit_code == 2
    assert "row 2 (line 3)" in res.stderr + res.stdout


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            SALES.replace(",", ";"),
            "sales.csv: looks semicolon-separated (';' between columns); pricelab reads "
            "comma-separated CSV with '.' as the decimal point: save or export it as CSV "
            "(comma delimited)",
        ),
        (
            SALES.replace(",", ";").replace(".", ","),
            "sales.csv: looks semicolon-separated (';' between columns and decimal commas "
            "(1,5)); pricelab reads comma-separated CSV with '.' as the decimal point: save or "
            "export it as CSV (comma delimited)",
        ),
        (
            SALES.replace(",", "\t"),
            "sales.csv: looks tab-separated ('\\t' between columns); pricelab reads "
            "comma-separated CSV with '.' as the decimal point: save or export it as CSV "
            "(comma delimited)",
        ),
        (
            SALES.replace("10.50", '"10,50"'),
            "sales.csv: column 'price': not a number: decimal comma? write numbers with '.' as "
            "the decimal point (1 row; first: row 1 (line 2) value '10,50')",
        ),
    ],
    ids=["semicolon", "semicolon_decimal_comma", "tab", "quoted_decimal_comma"],
)
def test_separator_and_decimal_comma_named(
    tmp_path: Path, cli: Callable[..., CliResult], text: str, expected: str
) -> None:
    path = tmp_path / "sales.csv"
    path.write_text(text)
    res = _ingest(cli, tmp_path, sales=path)
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 2
    assert doc["error"].replace(str(tmp_path) + "/", "") == expected
    assert not (tmp_path / "h.duckdb").exists() or _count(tmp_path / "h.duckdb") == 0


def _count(db: Path) -> int:
    with Store.open(db, read_only=True) as store:
        return store.count("sales")


def test_market_case_gets_a_hint(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    sales = tmp_path / "sales.csv"
    sales.write_text(SALES.replace(",GB,", ",gb,"))
    markets = tmp_path / "markets.csv"
    markets.write_text("market,currency,fx_rate,vat_rate\nUS,USD,1.08,0\nGB,GBP,0.85,0.2\n")
    res = _ingest(cli, tmp_path, sales=sales, markets=markets)
    assert res.exit_code == 2
    error = json.loads(res.stdout)["error"]
    assert "markets: column 'market': is missing markets used in sales" in error
    assert (
        "markets: column 'market': differs only in upper/lower case from the codes used "
        "elsewhere ('gb' vs 'GB'): codes are case-sensitive, write them the same way in every "
        "file"
    ) in error


def test_sales_market_case_mix_is_a_warning(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    sales = tmp_path / "sales.csv"
    sales.write_text(SALES + "B,gb,2024-01-08,20.00,1\n")
    res = _ingest(cli, tmp_path, sales=sales)
    assert res.exit_code == 0, res.stderr
    rules = [w["message"] for w in json.loads(res.stdout)["warnings"]]
    assert (
        "sales: column 'market': market codes that differ only in case are different "
        "markets: GB, gb" in rules
    )


@pytest.mark.parametrize("vat", ["19", "1", "-0.1"])
def test_vat_rate_is_a_fraction(tmp_path: Path, cli: Callable[..., CliResult], vat: str) -> None:
    sales = tmp_path / "sales.csv"
    sales.write_text(SALES)
    markets = tmp_path / "markets.csv"
    markets.write_text(f"market,currency,fx_rate,vat_rate\nUS,USD,1.08,0\nGB,GBP,0.85,{vat}\n")
    res = _ingest(cli, tmp_path, sales=sales, markets=markets)
    assert res.exit_code == 2
    assert json.loads(res.stdout)["error"].endswith(
        "markets.csv: column 'vat_rate': must be a fraction in [0, 1) (0.20 for 20%; a "
        f"percentage was given?) (1 row; first: row 2 (line 3) value '{vat}')"
    )


def _parity_sales(tmp_path: Path) -> Path:
    """Ten items sold in EUR (DE), GBP (GB, 0.85 per EUR) and JPY (JP, 160 per EUR)."""
    rows = ["item_id,market,date,price,quantity"]
    for i in range(10):
        base = 50.0 + 10 * i
        for market, fx in (("DE", 1.0), ("GB", 0.85), ("JP", 160.0)):
            for w, day in enumerate(("2024-01-01", "2024-01-08", "2024-01-15")):
                rows.append(f"I{i},{market},{day},{base * fx * (1 + 0.02 * w):.2f},{3 + w}")
    path = tmp_path / "sales.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    "gb, jp, flagged",
    [("0.85", "160", []), ("1.1765", "160", ["GB"]), ("0.85", "0.00625", ["JP"])],
    ids=["right", "gb_swapped", "jp_swapped"],
)
def test_swapped_fx_rate_is_a_warning(
    tmp_path: Path, cli: Callable[..., CliResult], gb: str, jp: str, flagged: list[str]
) -> None:
    markets = tmp_path / "markets.csv"
    markets.write_text(f"market,currency,fx_rate\nDE,EUR,1\nGB,GBP,{gb}\nJP,JPY,{jp}\n")
    res = _ingest(cli, tmp_path, sales=_parity_sales(tmp_path), markets=markets)
    assert res.exit_code == 0, res.stderr
    fx = [w["rule"] for w in json.loads(res.stdout)["warnings"] if w["column"] == "fx_rate"]
    assert [r.split(" for ")[1].split(" ")[0] for r in fx] == flagged
    if flagged == ["GB"]:
        assert fx[0].startswith(
            "fx_rate 1.1765 for GB looks inverted: with it, GB's prices in base currency are "
            "0.72x the same items' prices in other markets (10 items); with 1/1.1765 = 0.85 "
            "they would be 1.00x."
        )


def test_extra_columns_are_warned_about(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    sales = tmp_path / "sales.csv"
    sales.write_text(
        "item_id,market,date,price,quantity,note\n"
        + "".join(line + ",x\n" for line in SALES.splitlines()[1:])
    )
    res = _ingest(cli, tmp_path, sales=sales)
    assert res.exit_code == 0, res.stderr
    messages = [w["message"] for w in json.loads(res.stdout)["warnings"]]
    assert any(
        m.endswith(
            "sales.csv: column(s) 'note' not used and not loaded (a sales file has: item_id, "
            "market, date, price, quantity, promo, unit_cost)"
        )
        for m in messages
    ), messages
    # the human summary prints the warning without a meaningless "0 rows" count
    human = cli("ingest", "--db", tmp_path / "h2.duckdb", "--sales", sales)
    assert human.exit_code == 0, human.stderr
    assert "not used" in human.stdout and " 0 " not in human.stdout
