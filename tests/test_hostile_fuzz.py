"""Property: no input makes a command end in exit 3 or a traceback; exit 2 changes nothing.

Generated hostile values (huge and tiny numbers, extreme dates, odd encodings and headers,
deep and aliased YAML, absurd option values) go through the real CLI (in process) against a
small database; every exit must be 0, 1 or 2, and after exit 2 the database must be equal
to its snapshot. The fixed corpus in ``tests/data/fuzz`` (the issue's inputs and what the
generator found) runs every time; hypothesis runs derandomised so CI sees the same cases.
"""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pricelab.cli.app import app
from tests.conftest import REPO, assert_same, snapshot

FUZZ = REPO / "tests" / "data" / "fuzz"
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _invoke(*args: object) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    err = res.stderr + (res.stdout if res.exit_code not in (0, 1) else "")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"{args}: uncaught {res.exception!r}") from res.exception
    return res.exit_code, err


def _check(db: Path, *args: object) -> int:
    """Run one command; assert exit 0/1/2, no internal error, no change after exit 2."""
    before = snapshot(db)
    code, err = _invoke(*args, "--db", db)
    assert code in (0, 1, 2), (args, code, err)
    assert "internal error" not in err and "Traceback" not in err, (args, err)
    if code == 2:
        assert_same(before, snapshot(db))
    return code


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 items x 2 markets x 30 weeks, with costs, items and markets; ols estimates and a plan."""
    folder = tmp_path_factory.mktemp("fuzz")
    rows = ["item_id,market,date,price,quantity,promo,unit_cost"]
    start = dt.date(2024, 1, 1)
    for i in range(4):
        for m, market in enumerate(("US", "DE")):
            for w in range(30):
                price = 50 + 10 * i + 5 * ((w + i + m) % 4)
                qty = int(2e5 / price**2) + (w * 7 + i) % 3  # elasticity about -2
                rows.append(f"IT{i},{market},{start + dt.timedelta(weeks=w)},{price},{qty},0,20")
    (folder / "sales.csv").write_text("\n".join(rows) + "\n")
    (folder / "items.csv").write_text("item_id,category\nIT0,a\nIT1,a\nIT2,b\nIT3,b\n")
    (folder / "markets.csv").write_text("market,currency,fx_rate\nUS,USD,1.1\nDE,EUR,1\n")
    db = folder / "t.duckdb"
    for args in (
        ["ingest", "--sales", folder / "sales.csv", "--items", folder / "items.csv"]
        + ["--markets", folder / "markets.csv"],
        ["estimate", "--model", "ols"],
        ["optimize"],
    ):
        code, err = _invoke(*args, "--db", db)
        assert code == 0, err
    return db


@pytest.fixture
def fresh(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], Path]:
    """A new copy of the template database per call (hypothesis reuses the test's fixtures)."""
    folder = tmp_path_factory.mktemp("copies")
    count = iter(range(10**6))

    def make() -> Path:
        out = folder / f"db{next(count)}.duckdb"
        shutil.copy(template, out)
        return out

    return make


# -- generated values ---------------------------------------------------------------------

NUMBERS = st.one_of(
    st.sampled_from(
        ["0", "-0", "1e308", "-1e308", "1e-308", "5e-324", "1e309", "nan", "inf", "-inf"]
        + ["9223372036854775807", "9223372036854775808", "18446744073709551616", "1e12"]
        + ["1e12.5", "0x10", "1_000", " 7 ", "1,5", "", "NULL", "+5", "٣"]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
DATES = st.one_of(
    st.sampled_from(
        ["0001-01-01", "1899-12-31", "1900-01-01", "2200-12-31", "2201-01-01", "9999-12-27"]
        + ["2024-02-30", "2025-13-01", "2024-1-1", "20240101", "+2024-01-01", "2024-01-01T25:00"]
        + ["", "yesterday", "2024-01-01 00:00:00"]
    ),
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).map(str),
)
TEXT = st.one_of(
    st.sampled_from(
        ['=HYPERLINK("http://x","y")', "+SUM(A1)", "", " ", "a\nb", 'q"uote', "é", "\u202e"]
        + ["null", "NaN", "x" * 300, "1e400"]
    ),
    st.text(max_size=12),
)
HEADERS = st.sampled_from(
    [
        ["item_id", "market", "date", "price", "quantity"],
        ["item_id", "market", "date", "price", "quantity", "promo", "unit_cost"],
        [" item_id", "market ", "date", "price", "quantity"],
        ["item_id", "market", "date", "price", "quantity", " price"],
        ["item_id", "market", "date", "price", "quantity", "Price"],
        ["ITEM_ID", "market", "date", "price", "quantity"],
        ["item_id", "market", "date", "price", "quantity", ""],
        ["item_id", "market", "date", "price"],
    ]
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1", "gzip"])


def _cell(col: str) -> st.SearchStrategy[str]:
    if col.strip().lower() == "date":
        return DATES
    if col.strip().lower() in ("price", "quantity", "promo", "unit_cost"):
        return NUMBERS
    return TEXT


@st.composite
def sales_files(draw: st.DrawFn) -> tuple[list[str], list[list[str]], str]:
    header = draw(HEADERS)
    n = draw(st.integers(1, 4))
    rows = []
    for r in range(n):
        row = []
        for col in header:
            plain = {"item_id": f"F{r}", "market": "US", "date": f"2024-03-{4 + r:02d}"}
            sane = plain.get(col.strip().lower(), "10")
            row.append(draw(st.one_of(st.just(sane), _cell(col))))
        rows.append(row)
    return header, rows, draw(ENCODINGS)


def _csv(header: list[str], rows: list[list[str]]) -> str:
    def q(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n\r') else v

    return "\n".join(",".join(q(v) for v in line) for line in [header, *rows]) + "\n"


def _encode(text: str, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(text.encode())
    return codecs.encode(text, encoding, errors="replace")


@SETTINGS
@given(sales_files())
def test_ingest_never_exit_3(fresh: Callable[[], Path], tmp_path: Path, case: tuple) -> None:
    header, rows, encoding = case
    f = tmp_path / "sales.csv"
    f.write_bytes(_encode(_csv(header, rows), encoding))
    db = fresh()
    if _check(db, "ingest", "--sales", f) == 0:  # every command survives what ingest accepts
        for args in (["validate"], ["estimate", "--model", "ols"], ["optimize"]):
            _check(db, *args)


SCALARS = st.one_of(
    NUMBERS.map(lambda s: s.strip() or "0"),
    st.sampled_from([".nan", ".inf", "-.inf", "1.0e+12", "-1", "0", "true", "null", "[]", "{}"]),
    st.integers(-(2**65), 2**65).map(str),
)
CONSTRAINT_KEYS = ["horizon_weeks", "min_margin_pct", "min_volume_pct", "max_avg_change_pct"]
BOUND_KEYS = ["max_increase_pct", "max_decrease_pct"]


@st.composite
def constraint_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["values", "deep", "bomb", "duplicate"]))
    if kind == "deep":
        n = draw(st.integers(10, 3000))
        return "frozen: " + "[" * n + "]" * n + "\n"
    if kind == "bomb":
        width, levels = draw(st.integers(2, 12)), draw(st.integers(2, 9))
        lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
        lines += [
            f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * width)}]" for k in range(1, levels + 1)
        ]
        return "\n".join(lines) + f"\nfrozen: *a{levels}\n"
    keys = draw(st.lists(st.sampled_from(CONSTRAINT_KEYS), min_size=1, max_size=3))
    if kind == "duplicate":
        keys = [*keys, keys[0]]
    lines = [f"{k}: {draw(SCALARS)}" for k in keys]
    if draw(st.booleans()):
        b = draw(st.sampled_from(BOUND_KEYS))
        lines.append(f"bounds: {{{b}: {draw(SCALARS)}}}")
    if draw(st.booleans()):
        lines.append(f"ladder: {{step: {draw(SCALARS)}}}")
    return "\n".join(lines) + "\n"


@SETTINGS
@given(constraint_texts())
def test_constraints_never_exit_3(fresh: Callable[[], Path], tmp_path: Path, text: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    _check(fresh(), "optimize", "--constraints", f)


@st.composite
def scenario_texts(draw: st.DrawFn) -> str:
    lines = []
    for key in ("baseline_weeks", "horizon_weeks"):
        if draw(st.booleans()):
            lines.append(f"{key}: {draw(SCALARS)}")
    lines.append("scenarios:\n  - name: s\n    changes:")
    lines.append(f"      - price_change_pct: {draw(SCALARS)}")
    if draw(st.booleans()):
        lines.append(f"        where: {{market: {draw(st.sampled_from(['US', 'XX', '[]']))}}}")
    return "\n".join(lines) + "\n"


@SETTINGS
@given(scenario_texts())
def test_scenarios_never_exit_3(fresh: Callable[[], Path], tmp_path: Path, text: str) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(text)
    _check(fresh(), "simulate", "--scenario", f)


BIG_INTS = st.one_of(
    st.sampled_from([0, 1, 520, 521, 416146, 2**31, 2**63 - 1, 2**63, 10**23, -1]),
    st.integers(-(2**70), 2**70),
)


@SETTINGS
@given(
    st.sampled_from(["design-weeks", "design-seed", "before", "cutoff", "as-of", "horizon"]),
    BIG_INTS,
    DATES,
)
def test_options_never_exit_3(
    fresh: Callable[[], Path], which: str, number: int, date: str
) -> None:
    design = ["experiment", "design", "--name", "e", "--cells=-5,0"]
    args = {
        "design-weeks": [*design, "--weeks", number, "--seed", 1],
        "design-seed": [*design, "--weeks", 4, "--seed", number],
        "before": ["estimate", "--model", "ols", "--before", date],
        "cutoff": ["backtest", "--model", "ols", "--cutoff", date],
        "as-of": ["monitor", "--as-of", date],
        "horizon": ["backtest", "--model", "ols", "--cutoff", "2024-06-03"]
        + ["--horizon-weeks", number],
    }[which]
    _check(fresh(), *args)


# -- the fixed corpus -----------------------------------------------------------------------

CORPUS = sorted(p.name for p in FUZZ.iterdir())


@pytest.mark.parametrize("name", CORPUS)
def test_corpus(fresh: Callable[[], Path], name: str) -> None:
    f = FUZZ / name
    db = fresh()
    if name.startswith("ingest-"):
        if _check(db, "ingest", "--sales", f) == 0:
            for args in (["validate"], ["estimate", "--model", "ols"], ["optimize"]):
                _check(db, *args)
    elif name.startswith("constraints-"):
        _check(db, "optimize", "--constraints", f)
    elif name.startswith("scenario-"):
        _check(db, "simulate", "--scenario", f)
    else:
        raise AssertionError(f"{name}: corpus files are named ingest-, constraints- or scenario-")
