"""``pricelab report``: a self-contained HTML file whose sections, images and numbers check out."""

from __future__ import annotations

import base64
import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pricelab.report.plots import curve_at, curve_points
from tests.test_report_fixtures import estimate_frame, plan_frame, scenario_frame, store_run

KEYS = [("IT-1", "US"), ("IT-1", "DE"), ("IT-2", "US"), ("IT-2", "DE")]
SECTIONS = ("overview", "quality", "elasticities", "curves", "plan", "scenarios")
EVIDENCE = ("backtest", "experiments")  # no such runs here: test_report_evidence.py
FX = {"US": 1.08, "DE": 1.0}  # loaded_db markets.csv


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(a.get("id") or "")
        if tag == "img":
            self.images.append(a.get("src") or "")
        for key in ("src", "href", "action", "srcset"):
            if a.get(key):
                self.urls.append(a[key] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def plain(self) -> str:
        """The document's text with whitespace collapsed."""
        return re.sub(r"\s+", " ", "".join(self.text))


def parse(path: Path) -> _Collector:
    c = _Collector()
    c.feed(path.read_text(encoding="utf-8"))
    c.close()
    return c


def png_size(src: str) -> tuple[int, int]:
    """Width and height of a ``data:image/png;base64`` image (checks the PNG signature)."""
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    raw = base64.b64decode(src[len(prefix) :], validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    return struct.unpack(">II", raw[16:24])


@pytest.fixture
def full_db(loaded_db: Path) -> tuple[Path, dict[str, str]]:
    est = estimate_frame(KEYS, category={"IT-1": "bags", "IT-2": "shoes"})
    e = store_run(loaded_db, "estimate", "elasticities", est, parameters={"model": "poisson"})
    plan = plan_frame(est)
    p = store_run(loaded_db, "optimize", "plans", plan, parents=[e])
    s = store_run(loaded_db, "simulate", "scenarios", scenario_frame(plan, est), parents=[e, p])
    return loaded_db, {"estimate": e, "optimize": p, "simulate": s, "plan": plan}  # type: ignore[dict-item]


def test_full_report_is_self_contained_with_every_section(full_db, tmp_path: Path, cli) -> None:
    db, runs = full_db
    out = tmp_path / "report.html"
    res = cli("report", "--db", db, "--output", out, "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["sections"] == dict.fromkeys(SECTIONS, True) | dict.fromkeys(EVIDENCE, False)
    assert doc["runs"] == {k: runs[k] for k in ("estimate", "optimize", "simulate")}
    html = out.read_text(encoding="utf-8")
    page = parse(out)
    assert page.sections == [*SECTIONS, *EVIDENCE]
    # no network reference (the SVG namespace name is an identifier, never fetched)
    assert not re.search(r"https?://", html.replace("http://www.w3.org/2000/svg", ""))
    assert not page.tags & {"link", "iframe", "object", "embed"}
    # scripts are inline only (the plan explorer): no src attribute to fetch
    assert re.findall(r"<script\b[^>]*>", html) == [
        '<script type="application/json" id="plan-data">',
        "<script>",
    ]
    assert all(u.startswith(("data:image/png;base64,", "#")) for u in page.urls)
    # quality: weekly units; elasticities: distribution + intervals; curves; plan; scenarios
    assert len(page.images) == 6
    for src in page.images:
        w, h = png_size(src)
        assert 600 <= w <= 1400 and 200 <= h <= 2000, (w, h)


def test_plan_numbers_match_a_hand_computation(full_db, tmp_path: Path, cli) -> None:
    db, runs = full_db
    out = tmp_path / "r.html"
    assert cli("report", "--db", db, "-o", out).exit_code == 0
    plan = runs["plan"]
    fx = plan["market"].replace_strict(FX, return_dtype=pl.Float64)
    uplift = float(((plan["expected_profit"] - plan["baseline_profit"]) / fx).sum())
    base = float((plan["baseline_profit"] / fx).sum())
    text = parse(out).plain
    assert f"{uplift:+,.0f} EUR" in text
    assert f"{uplift / base * 100:+.1f}%" in text
    raised = int((plan["recommended_price"] > plan["current_price"]).sum())
    lowered = int((plan["recommended_price"] < plan["current_price"]).sum())
    assert f"{raised:,} / {lowered:,}" in text


def test_sections_without_data_say_so(loaded_db: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "r.html"
    res = cli("report", "--db", loaded_db, "-o", out, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["sections"] == {
        "overview": True,
        "quality": True,
        "elasticities": False,
        "curves": False,
        "plan": False,
        "scenarios": False,
        "backtest": False,
        "experiments": False,
    }
    text = parse(out).plain
    assert "No backtest run: run pricelab backtest" in text
    assert "No experiment analysis: run pricelab experiment design" in text
    assert "No estimate run: run pricelab estimate" in text
    assert "No optimize run: run pricelab optimize" in text
    assert "No simulate run" in text
    assert len(parse(out).images) == 1  # weekly units only


def test_run_option_follows_lineage(full_db, tmp_path: Path, cli) -> None:
    db, runs = full_db
    est = estimate_frame(KEYS, shift={KEYS[0]: 0.3})
    lonely = store_run(db, "estimate", "elasticities", est)  # newer, but nothing built on it
    out = tmp_path / "r.html"
    doc = json.loads(cli("report", "--db", db, "-o", out, "--json").stdout)
    # default: the latest plan and the estimate it was built on, not the newer estimate
    assert doc["runs"] == {k: runs[k] for k in ("estimate", "optimize", "simulate")}
    doc = json.loads(
        cli("report", "--db", db, "-o", out, "--json", "--run", runs["optimize"]).stdout
    )
    assert doc["runs"] == {k: runs[k] for k in ("estimate", "optimize", "simulate")}
    doc = json.loads(cli("report", "--db", db, "-o", out, "--json", "--run", lonely).stdout)
    assert doc["runs"] == {"estimate": lonely, "optimize": None, "simulate": None}
    assert "No optimize run" in parse(out).plain


def test_bad_arguments_are_exit_2(full_db, tmp_path: Path, cli) -> None:
    db, _ = full_db
    ingest_run = json.loads(
        cli("runs", "list", "--db", db, "--command", "ingest", "--json").stdout
    )[0]["run_id"]
    res = cli("report", "--db", db, "-o", tmp_path / "r.html", "--run", ingest_run)
    assert res.exit_code == 2 and f"run {ingest_run} is a ingest run" in res.stderr
    res = cli("report", "--db", db, "-o", tmp_path / "r.pdf")
    assert res.exit_code == 2  # each command's extensions carry their own hint
    assert res.stderr.strip() == (
        f"error: --output {tmp_path / 'r.pdf'}: the report is HTML; use a .html file name"
    )
    res = cli("optimize", "--db", db, "-o", tmp_path / "plan.pdf")
    assert res.exit_code == 2 and res.stderr.strip() == (
        f"error: --output {tmp_path / 'plan.pdf'}: unknown file extension '.pdf'; "
        "expected one of .csv, .json, .parquet, .pq"
    )
    res = cli("report", "--db", db, "-o", tmp_path / "nope" / "r.html")
    assert res.exit_code == 2 and "does not exist" in res.stderr
    res = cli("report", "--db", db, "-o", tmp_path / "r.html", "--run", "zzz")
    assert res.exit_code == 2 and "run 'zzz' not found" in res.stderr


@pytest.mark.parametrize("e", [-1.6, -2.3, -3.5])
def test_curve_profit_peaks_at_the_closed_form_optimum(e: float) -> None:
    p0, c, q0 = 100.0, 45.0, 20.0
    star = c * e / (1 + e)  # argmax of (p - c) q0 (p / p0)^e
    pts = curve_points(p0, star, q0, e, c, n=20001)
    assert pts["price"][np.argmax(pts["profit"])] == pytest.approx(star, rel=2e-4)
    k = np.searchsorted(pts["price"], p0)
    assert pts["quantity"][k] == pytest.approx(q0 * (pts["price"][k] / p0) ** e)


def test_curve_passes_through_the_plan(full_db) -> None:
    """At the recommended price the drawn profit is the plan's expected profit."""
    _, runs = full_db
    est = estimate_frame(KEYS)
    for r, e in zip(runs["plan"].iter_rows(named=True), est["elasticity"], strict=True):
        c = r["current_price"] - r["baseline_profit"] / r["baseline_quantity"]
        _, profit = curve_at(
            r["recommended_price"], r["current_price"], r["baseline_quantity"], e, c
        )
        assert profit == pytest.approx(r["expected_profit"], rel=1e-12)


def _browser() -> str | None:
    import shutil

    return next(
        (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )


@pytest.mark.slow
@pytest.mark.skipif(_browser() is None, reason="no headless Chromium installed")
def test_report_renders_in_a_real_browser(full_db, tmp_path: Path, cli) -> None:
    """Chromium, offline, draws the page: a tall screenshot with the plots' colours in it."""
    import subprocess

    db, _ = full_db
    out = tmp_path / "report.html"
    assert cli("report", "--db", db, "-o", out).exit_code == 0
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            _browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--screenshot={shot}",
            "--window-size=1280,3000",
            out.as_uri(),
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    from PIL import Image

    img = Image.open(shot).convert("RGB").resize((320, 750))
    colours = img.getcolors(maxcolors=320 * 750)
    assert colours is not None and len(colours) > 50  # text, tables and plots, not a blank page
    # the plan's uplift bars (green #4f8a3c) are drawn somewhere on the page
    assert any(
        abs(r - 0x4F) < 40 and abs(g - 0x8A) < 40 and abs(b - 0x3C) < 40 for _, (r, g, b) in colours
    )
