"""The monthly report command over a real database (issue 15): seeded figures we control
come out in the CSVs of the right district and community, and the PDF itself is rendered
page by page to PNG (pypdfium2, a dev dependency) for a visual check (artifacts/report/):
one page per four sections, none of them blank."""

from __future__ import annotations

import asyncio
import csv
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib.pyplot as plt
import psycopg
import pypdfium2 as pdfium
from fastapi.testclient import TestClient
from matplotlib.backends.backend_pdf import PdfPages
from PIL import Image, ImageStat
from psycopg.rows import dict_row

from alerts.care.plan import month_bounds
from alerts.dispatch.orders import Actor
from alerts.dispatch.policy import policy_from_settings
from alerts.dispatch.service_orders import create_service_order
from dashboard_api.app import create_app
from dashboard_api.report.__main__ import due_month, previous_month, write_report
from dashboard_api.report.render import page_count, section_keys
from devices.domain import ServiceCategory
from devices.registry import Conn
from devices.settings import Settings
from tests.dispatch_world import arun
from tests.services import Services, query, seed
from tests.test_orders_api import demo_login

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "report"


# grey-level variance of a rendered page (100 dpi): 0 for an empty page, about 35 for a title
# alone; the report's last page (one plot) about 370, a page of four plots 3000-4700
BLANK_VARIANCE = 200.0


def render_pdf(pdf: Path, out: Path) -> list[tuple[Path, Image.Image, str]]:
    """Each page of the PDF as a PNG in ``out`` (page-N.png, 100 dpi) with its text."""
    out.mkdir(parents=True, exist_ok=True)
    pages = []
    doc = pdfium.PdfDocument(pdf)
    try:
        for n, page in enumerate(doc, start=1):
            image = page.render(scale=100 / 72).to_pil().convert("RGB")
            text = page.get_textpage().get_text_range()
            png = out / f"page-{n}.png"
            image.save(png)
            pages.append((png, image, text))
    finally:
        doc.close()
    return pages


def variance(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("L")).var[0])


def test_the_blank_page_check_sees_a_blank_page(tmp_path: Path) -> None:
    """The check the report's pages must pass fails on a page with a title and nothing else."""
    with PdfPages(tmp_path / "blank.pdf") as pdf:
        fig = plt.figure(figsize=(11.69, 8.27))
        fig.suptitle("Monthly report 2026-11 (p. 1)", fontsize=12)
        pdf.savefig(fig)
        plt.close(fig)
    [(png, image, _text)] = render_pdf(tmp_path / "blank.pdf", tmp_path / "pages")
    assert image.width > image.height > 800  # A4 landscape at 100 dpi
    assert png.stat().st_size > 0
    assert variance(image) < BLANK_VARIANCE


def _summary(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as fh:
        return {r["metric"]: r["value"] for r in csv.DictReader(fh)}


def test_report_numbers_match_the_seeded_month(
    services: Services, database_url: str, tmp_path: Path
) -> None:
    url = database_url
    pop = seed(services, url)
    now = datetime.now(UTC)
    local = now.astimezone(ZoneInfo("Asia/Shanghai")).date().replace(day=1)
    start, _ = month_bounds(local, "Asia/Shanghai")
    t0 = start + timedelta(hours=10)
    x = int(
        query(url, "SELECT resident_id FROM residents WHERE site_id = 'home-17'")[0]["resident_id"]
    )
    visitor = int(
        query(url, "SELECT user_id FROM users WHERE username = 'visitor-west'")[0]["user_id"]
    )

    async def month(conn: Conn) -> None:
        for n, (colour, kind) in enumerate(
            (("red", "sos"), ("red", "sos"), ("yellow", "device_offline"))
        ):
            await conn.execute(
                "INSERT INTO alerts (idem_key, fold_key, site_id, resident_id, kind, colour, detector, "
                "occurred_at, raised_at, explanation) VALUES (%s, %s, 'home-17', %s, %s, %s, 'test', %s, %s, 'seeded')",
                (f"t{n}", f"t{n}", x, kind, colour, t0, t0),
            )
        for n, (wait_s, outcome) in enumerate(((30, "handled_by_phone"), (400, "false_alarm"))):
            oid = await create_service_order(
                conn,
                site_id="home-17",
                resident_id=x,
                category=ServiceCategory.MEAL if n == 0 else ServiceCategory.CLEANING,
                note="",
                actor=Actor("test", None),
                now=t0,
                policy=policy_from_settings(Settings()),
            )
            await conn.execute(
                "UPDATE dispatch_orders SET state = 'resolved', accepted_at = opened_at + %s, "
                "on_site_at = opened_at + %s, resolved_at = opened_at + %s, outcome = %s WHERE order_id = %s",
                (
                    timedelta(seconds=wait_s),
                    timedelta(seconds=wait_s + 600),
                    timedelta(seconds=wait_s + 900),
                    outcome,
                    oid,
                ),
            )
        await conn.execute(
            "INSERT INTO visits (resident_id, visitor_id, visited_at, recorded_at, eating_ok, mobility_ok, "
            "mood_ok, home_safety_ok, devices_ok) VALUES (%s, %s, %s, %s, true, true, true, true, true)",
            (x, visitor, t0, t0),
        )
        for n, closed in enumerate((t0 + timedelta(hours=5), None)):
            await conn.execute(
                "INSERT INTO safety_findings (idem_key, site_id, source, item_key, kind, description, deadline, "
                "opened_at, closed_at) VALUES (%s, 'sunrise', 'round', 'fire_exits', 'blocked', 'seeded', %s, %s, %s)",
                (f"f{n}", t0 + timedelta(days=7), t0, closed),
            )

    arun(url, month)
    out = tmp_path / "report"
    files = asyncio.run(write_report(url, month=local, out=out))
    assert files
    west = _summary(out / "community-pinghu-west" / "summary.csv")
    assert west["alerts"] == "3"
    assert west["orders"] == "2"
    assert float(west["accepted_within_60s"]) == 0.5
    assert float(west["accepted_within_300s"]) == 0.5
    assert float(west["false_alarm_rate"]) == 0.5
    assert west["accept_p99_s"] == "400.0"
    assert (west["priority_residents"], west["visited"]) == ("3", "1")
    assert west["residents_home_care_bed"] == "3"
    east = _summary(out / "community-pinghu-east" / "summary.csv")
    assert (east["findings_opened"], east["findings_closed"], east["findings_open_at_end"]) == (
        "2",
        "1",
        "1",
    )
    assert (east["priority_residents"], east["visited"], east["visit_rate"]) == ("4", "0", "0.0")
    district = _summary(out / "district-pinghu" / "summary.csv")
    assert district["residents_nursing_home"] == "20"
    assert district["priority_residents"] == "7"
    with (out / "community-pinghu-west" / "requests.csv").open(encoding="utf-8") as fh:
        assert sorted((r["category"], r["orders"]) for r in csv.DictReader(fh)) == [
            ("cleaning", "1"),
            ("meal", "1"),
        ]
    # the PDF's own pages, rendered: four sections to a page, each page a page of plots
    assert len(section_keys()) == 9
    rendered: dict[str, list[Path]] = {}
    for scope in ("community-pinghu-west", "community-pinghu-east", "district-pinghu"):
        pdf = out / scope / "report.pdf"
        assert pdf.read_bytes().startswith(b"%PDF")
        pages = render_pdf(pdf, tmp_path / "rendered" / scope)
        assert len(pages) == page_count() == 3, scope
        for n, (_png, image, text) in enumerate(pages, start=1):
            assert image.width > image.height > 800  # A4 landscape at 100 dpi
            assert variance(image) > BLANK_VARIANCE, (scope, n, variance(image))
            assert f"p. {n})" in text, (scope, n, text[:200])
            assert local.strftime("%Y-%m") in text
        rendered[scope] = [png for png, _, _ in pages]
    # the same figures for the bureau's report reader over the API, without names
    with TestClient(create_app(Settings(database_url=url))) as client:
        got = client.get(
            f"/api/reports/monthly?month={local:%Y-%m}", headers=demo_login(client, pop, "reader")
        )
        assert got.status_code == 200
        assert "full_name" not in got.text
        assert "Wang Fang" not in got.text
        assert "Zheng Hui" not in got.text  # the home-17 resident
        api_west = next(
            g for g in got.json() if (g["level"], g["name"]) == ("community", "pinghu-west")
        )
        assert (api_west["orders"], api_west["visited"], api_west["alerts_by_colour"]) == (
            2,
            1,
            {"red": 2, "yellow": 1},
        )
        staff = demo_login(client, pop, "staff-homes")
        assert client.get("/api/reports/monthly", headers=staff).status_code == 403
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for png in rendered["community-pinghu-west"]:
        shutil.copy(png, ARTIFACTS / png.name)


def test_previous_month_across_the_year() -> None:
    assert previous_month(datetime(2027, 1, 10, tzinfo=UTC)).isoformat() == "2026-12-01"
    # 2026-12-01 02:00 in Shanghai is still 11-30 in UTC: the local month counts
    assert previous_month(datetime(2026, 11, 30, 18, tzinfo=UTC)).isoformat() == "2026-11-01"


def test_the_schedule_claims_each_month_once(database_url: str, tmp_path: Path) -> None:
    async def go() -> list[object]:
        async with await psycopg.AsyncConnection.connect(
            database_url, row_factory=dict_row
        ) as conn:
            at = datetime(2026, 12, 1, 1, tzinfo=UTC)
            first = await due_month(conn, now=at, out=tmp_path)
            again = await due_month(conn, now=at + timedelta(hours=1), out=tmp_path)
            nxt = await due_month(conn, now=datetime(2027, 1, 1, 1, tzinfo=UTC), out=tmp_path)
            return [first, again, nxt]

    first, again, nxt = asyncio.run(go())
    assert str(first) == "2026-11-01"
    assert again is None  # a restart the same month writes nothing twice
    assert str(nxt) == "2026-12-01"
