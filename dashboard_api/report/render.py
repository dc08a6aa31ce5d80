"""Writing one scope's month: a PDF of plots (each page also as PNG, for a visual check) and
CSVs of the same numbers. Chinese first, English after, in a CJK font."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages

from dashboard_api.report.data import PROMISE_S, ScopeFigures

plt.rcParams["font.sans-serif"] = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "DejaVu Sans"]
plt.rcParams["axes.unicode_minus"] = False

# Chinese first, English after (one catalogue per module, for the shared i18n catalogue).
STRINGS: dict[str, dict[str, str]] = {
    "title": {"zh-CN": "{month} 月度报告：{scope}", "en": "Monthly report {month}: {scope}"},
    "district": {"zh-CN": "区县", "en": "district"},
    "community": {"zh-CN": "社区", "en": "community"},
    "residents": {
        "zh-CN": "按机构类型的监护老人（人）",
        "en": "Residents watched by kind of site (people)",
    },
    "nursing_home": {"zh-CN": "养老机构", "en": "nursing home"},
    "home_care_bed": {"zh-CN": "家庭养老床位", "en": "home-care bed"},
    "alerts": {"zh-CN": "按颜色和类型的警报（次）", "en": "Alerts by colour and kind (count)"},
    "tth": {
        "zh-CN": "接单用时百分位（秒），红线为5分钟承诺",
        "en": "Time to accept, percentiles (s); red line: the 5-min promise",
    },
    "shares": {
        "zh-CN": "60秒内接单率、5分钟内接单率、误报率（%）",
        "en": "Accepted within 60 s / 5 min, false alarms (%)",
    },
    "within60": {"zh-CN": "60秒内接单", "en": "accepted ≤60 s"},
    "within300": {"zh-CN": "5分钟内接单", "en": "accepted ≤5 min"},
    "false_alarm": {"zh-CN": "误报率", "en": "false alarms"},
    "requests": {
        "zh-CN": "各社区高频需求（单）",
        "en": "Most frequent requests per community (orders)",
    },
    "providers": {"zh-CN": "服务商评分（0-100）", "en": "Provider scores (0-100)"},
    "visits": {
        "zh-CN": "重点对象探访率（%），目标100%",
        "en": "Visit rate of the priority group (%), target 100%",
    },
    "findings": {"zh-CN": "安全隐患（项）", "en": "Safety findings (count)"},
    "opened": {"zh-CN": "新发现", "en": "opened"},
    "closed": {"zh-CN": "已整改", "en": "closed"},
    "open_at_end": {"zh-CN": "月末未整改", "en": "open at month end"},
    "uptime": {
        "zh-CN": "设备在线率（%，有数据的设备日）",
        "en": "Device uptime (% of device-days with data)",
    },
    "no_data": {"zh-CN": "本月无数据", "en": "no data this month"},
}


def t(key: str, **kw: object) -> str:
    s = STRINGS[key]
    return f"{s['zh-CN'].format(**kw)}\n{s['en'].format(**kw)}"


def t1(key: str) -> str:
    s = STRINGS[key]
    return f"{s['zh-CN']} {s['en']}"


def _empty(ax: Axes) -> None:
    ax.text(0.5, 0.5, t("no_data"), ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def _bars(
    ax: Axes,
    labels: list[str],
    values: list[float],
    *,
    colour: str = "#4472c4",
    fmt: str = "{:.0f}",
) -> None:
    if not labels:
        _empty(ax)
        return
    bars = ax.bar(labels, values, color=colour)
    ax.set_ylim(bottom=0, top=max([*values, 1.0]) * 1.15)
    ax.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=8)
    ax.tick_params(axis="x", labelsize=8, labelrotation=20)


COLOURS = {"red": "#d62728", "yellow": "#e6b800", "green": "#2ca02c"}


PER_PAGE = 4  # plots on one A4 page, 2 x 2


def section_keys() -> list[str]:
    """The report's sections (one plot each), in page order."""
    return [key for key, _ in _plots()]


def page_count() -> int:
    """How many pages a scope's PDF has: its sections, PER_PAGE to a page."""
    return -(-len(_plots()) // PER_PAGE)


def _plots() -> list[tuple[str, object]]:
    return [
        ("residents", _residents),
        ("alerts", _alerts),
        ("tth", _tth),
        ("shares", _shares),
        ("requests", _requests),
        ("providers", _providers),
        ("visits", _visits),
        ("findings", _findings),
        ("uptime", _uptime),
    ]


def _residents(ax: Axes, f: ScopeFigures) -> None:
    kinds = sorted(f.residents_by_site_kind)
    _bars(ax, [t1(k) for k in kinds], [f.residents_by_site_kind[k] for k in kinds])
    ax.set_ylabel("人 people")


def _alerts(ax: Axes, f: ScopeFigures) -> None:
    kinds = sorted({k for _, k in f.alerts_by_colour_kind})
    if not kinds:
        _empty(ax)
        return
    bottom = [0.0] * len(kinds)
    for colour, hue in COLOURS.items():
        vals = [float(f.alerts_by_colour_kind.get((colour, k), 0)) for k in kinds]
        ax.bar(kinds, vals, bottom=bottom, color=hue, label=colour)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelsize=7, labelrotation=30)
    ax.set_ylabel("次 count")


def _tth(ax: Axes, f: ScopeFigures) -> None:
    pct = f.orders.percentiles["accept"] if f.orders else {}
    labels = [q for q, v in pct.items() if v is not None]
    _bars(ax, labels, [float(pct[q] or 0) for q in labels])
    ax.axhline(PROMISE_S, color="red", linestyle="--")
    ax.set_ylabel("秒 s")


def _shares(ax: Axes, f: ScopeFigures) -> None:
    o = f.orders
    pairs = (
        []
        if o is None
        else [
            (t1("within60"), o.accepted_within_60s),
            (t1("within300"), o.accepted_within_300s),
            (t1("false_alarm"), o.false_alarm_rate),
        ]
    )
    shown = [(k, 100 * v) for k, v in pairs if v is not None]
    _bars(ax, [k for k, _ in shown], [v for _, v in shown], fmt="{:.1f}%")
    ax.set_ylim(0, 110)
    ax.set_ylabel("%")


def _requests(ax: Axes, f: ScopeFigures) -> None:
    labels = [f"{c}: {cat}" for c, top in f.top_requests.items() for cat, _ in top[:3]]
    values = [float(n) for top in f.top_requests.values() for _, n in top[:3]]
    _bars(ax, labels, values)
    ax.set_ylabel("单 orders")


def _providers(ax: Axes, f: ScopeFigures) -> None:
    scored = [(p.group, p.score) for p in f.providers if p.score is not None]
    _bars(ax, [g[:24] for g, _ in scored], [float(s or 0) for _, s in scored], fmt="{:.1f}")
    ax.set_ylim(0, 110)


def _visits(ax: Axes, f: ScopeFigures) -> None:
    if f.visit_rate is None:
        _empty(ax)
        return
    _bars(ax, [f"{f.visits_done}/{f.visits_due}"], [100 * f.visit_rate], fmt="{:.1f}%")
    ax.axhline(100, color="green", linestyle="--")
    ax.set_ylim(0, 110)
    ax.set_ylabel("%")


def _findings(ax: Axes, f: ScopeFigures) -> None:
    keys = ("opened", "closed", "open_at_end")
    vals = [f.findings_opened, f.findings_closed, f.findings_open_at_end]
    _bars(ax, [t1(k) for k in keys], [float(v) for v in vals], colour="#ed7d31")
    ax.set_ylabel("项 count")


def _uptime(ax: Axes, f: ScopeFigures) -> None:
    if f.uptime is None:
        _empty(ax)
        return
    _bars(ax, [f"{f.device_days_reporting}/{f.device_days}"], [100 * f.uptime], fmt="{:.1f}%")
    ax.set_ylim(0, 110)
    ax.set_ylabel("%")


def write_scope(f: ScopeFigures, out: Path) -> list[Path]:
    """The scope's PDF, one PNG per page and its CSVs under ``out/<level>-<name>/``."""
    d = out / f.scope.slug
    d.mkdir(parents=True, exist_ok=True)
    title = t("title", month=f.month, scope=f"{t1(f.scope.level)} {f.scope.name}")
    written: list[Path] = []
    plots = _plots()
    with PdfPages(d / "report.pdf") as pdf:
        for page in range(0, len(plots), PER_PAGE):
            on_page = plots[page : page + PER_PAGE]
            fig, axes = plt.subplots(2, 2, figsize=(11.69, 8.27))  # A4 landscape
            fig.suptitle(f"{title}  ({f.period}, p. {page // PER_PAGE + 1})", fontsize=12)
            for ax, (key, draw) in zip(axes.flat, on_page, strict=False):
                ax.set_title(t(key), fontsize=9)
                draw(ax, f)  # type: ignore[operator]
            for ax in list(axes.flat)[len(on_page) :]:
                ax.axis("off")
            fig.tight_layout(rect=(0, 0, 1, 0.94))
            pdf.savefig(fig)
            png = d / f"page-{page // PER_PAGE + 1}.png"
            fig.savefig(png, dpi=80)
            written.append(png)
            plt.close(fig)
    written.append(d / "report.pdf")
    written += _csvs(f, d)
    return written


def _csvs(f: ScopeFigures, d: Path) -> list[Path]:
    o = f.orders
    summary = [
        ("month", f.month),
        ("level", f.scope.level),
        ("name", f.scope.name),
        *((f"residents_{k}", v) for k, v in sorted(f.residents_by_site_kind.items())),
        ("alerts", sum(f.alerts_by_colour_kind.values())),
        ("orders", o.orders if o else 0),
        *((f"accept_{q}_s", v) for q, v in (o.percentiles["accept"].items() if o else [])),
        ("accepted_within_60s", o.accepted_within_60s if o else None),
        ("accepted_within_300s", o.accepted_within_300s if o else None),
        ("false_alarm_rate", o.false_alarm_rate if o else None),
        ("priority_residents", f.visits_due),
        ("visited", f.visits_done),
        ("visit_rate", f.visit_rate),
        ("findings_opened", f.findings_opened),
        ("findings_closed", f.findings_closed),
        ("findings_open_at_end", f.findings_open_at_end),
        ("device_days", f.device_days),
        ("device_days_reporting", f.device_days_reporting),
        ("device_uptime", f.uptime),
    ]
    tables: dict[str, tuple[list[str], list[tuple[object, ...]]]] = {
        "summary.csv": (["metric", "value"], [(k, "" if v is None else v) for k, v in summary]),
        "alerts.csv": (
            ["colour", "kind", "count"],
            [(c, k, n) for (c, k), n in sorted(f.alerts_by_colour_kind.items())],
        ),
        "requests.csv": (
            ["community", "category", "orders"],
            [(c, cat, n) for c, top in sorted(f.top_requests.items()) for cat, n in top],
        ),
        "providers.csv": (
            ["provider", "orders", "accepted", "resolved", "accepted_within_60s", "score"],
            [
                (p.group, p.orders, p.accepted, p.resolved, p.accepted_within_60s, p.score)
                for p in f.providers
            ],
        ),
    }
    paths = []
    for name, (header, rows) in tables.items():
        path = d / name
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
        paths.append(path)
    return paths
