"""Run and SPC charts as server-rendered SVG: one renderer for web pages and for
WeasyPrint PDFs. No script, no external fonts, no ``style`` attributes (the site's CSP
forbids inline styles; SVG presentation attributes such as ``fill`` are fine).

``chart_for(verdict, ...)`` turns an indicator's verdicts into a ``ChartSpec`` (points,
centre line, process limits, target, floor, baseline and phase changes, signals); and
``render_svg(spec)`` draws it. Every chart carries a text alternative (``<title>`` and
``<desc>`` referenced by ``aria-labelledby``) and ``spec.rows`` feeds the data table
shown under it for screen readers and for anyone who prefers numbers.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from audits import spc
from audits.deterioration import clip_limits, limits_apply
from audits.models import Annotation, Deterioration, MonitoredIndicator
from audits.spc.text import plural
from audits.verdicts import IndicatorVerdict, day, short_value
from core.thresholds import MIN_PARTITION_POINTS, MIN_SPC_POINTS
from plans.models import Indicator

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 52, 128, 16, 70
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
# Colours from the NHS identity palette, as Making Data Count uses them: grey for common
# cause, blue for improvement, orange for concern. Shapes differ too, so colour is never
# the only cue (WCAG 1.4.1).
GREY, BLUE, ORANGE, PURPLE = "#768692", "#005eb8", "#ed8b00", "#6b2c83"
INK, LIMIT, TARGET, FLOOR, WINDOW = "#212b32", "#4c6272", "#d5281b", "#8a1538", "#e3f1e6"
NOTE = "#330072"  # chart notes: NHS purple, distinct from every line above
# Darker shades for text and thin strokes on white (WCAG contrast of 4.5:1 or more).
GREY_INK, ORANGE_INK = "#4c6272", "#9a4a00"

_RULES = {
    "astro": "point beyond a process limit",
    "shift": "shift",
    "trend": "trend",
    "2of3": "two of three beyond 2 sigma",
    "long_run": "long run",
    "few_crossings": "too few crossings",
    "floor": "beyond the monitoring floor",
}


def _rule_text(code: str) -> str:
    base = code.rsplit("_", 1)[0] if code.endswith(("_hi", "_lo", "_up", "_dn")) else code
    return _RULES.get(base, code)


@dataclass
class ChartPoint:
    label: str
    value: float
    display: str  # "94.2% (32 of 34)"
    meets_target: bool
    effect: str = ""  # "", "improvement", "concern", "neutral"
    rules: tuple[str, ...] = ()
    mean: float | None = None
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class ChartNote:
    """A numbered flag on the chart, listed under it with the same number."""

    number: int
    position: float  # in point indices: 2.5 is halfway between the 3rd and 4th results
    date_label: str
    kind_label: str
    text: str
    is_rebase: bool = False

    @property
    def sentence(self) -> str:
        return f"{self.date_label}, {self.kind_label}: {self.text}"


@dataclass(frozen=True)
class Icon:
    """A Making Data Count icon as drawn (``code``) and said (``text``)."""

    code: str  # common, improvement-high, ..., pass, hit-or-miss, fail
    label: str  # short: "Special cause improvement (higher)"
    text: str  # the full text alternative


VARIATION_ICONS = {
    "common": Icon(
        "common",
        "Common cause variation",
        "Variation: common cause only, no significant change.",
    ),
    "improvement-high": Icon(
        "improvement-high",
        "Special cause improvement (higher)",
        "Variation: special cause improvement, the latest result is significantly higher.",
    ),
    "improvement-low": Icon(
        "improvement-low",
        "Special cause improvement (lower)",
        "Variation: special cause improvement, the latest result is significantly lower.",
    ),
    "concern-high": Icon(
        "concern-high",
        "Special cause concern (higher)",
        "Variation: special cause concern, the latest result is significantly higher.",
    ),
    "concern-low": Icon(
        "concern-low",
        "Special cause concern (lower)",
        "Variation: special cause concern, the latest result is significantly lower.",
    ),
}
ASSURANCE_ICONS = {
    spc.AssuranceIcon.PASS: Icon(
        "pass",
        "Target consistently passed",
        "Assurance: the target will be consistently passed (it lies outside the process "
        "limits, on the right side).",
    ),
    spc.AssuranceIcon.HIT_OR_MISS: Icon(
        "hit-or-miss",
        "Target hit or miss",
        "Assurance: hit or miss (the target lies between the process limits, so it will "
        "sometimes be met and sometimes missed).",
    ),
    spc.AssuranceIcon.FAIL: Icon(
        "fail",
        "Target consistently failed",
        "Assurance: the target will be consistently failed unless the process changes (it "
        "lies outside the process limits, on the wrong side).",
    ),
}


@dataclass
class ChartSpec:
    chart_id: str
    title: str
    unit: str
    method_label: str
    points: list[ChartPoint]
    centre_name: str = "mean"
    target: float | None = None
    target_label: str = ""
    floor: float | None = None
    floor_label: str = ""
    markers: list[tuple[int, str]] = field(default_factory=list)  # (index, label)
    window_from: int | None = None  # first index of the sustain window
    window_label: str = "Sustain window"
    summary: str = ""  # the plain-English verdict, for <desc>
    notes: list[ChartNote] = field(default_factory=list)
    # Making Data Count's icons for the latest result, as the chart shows it; None (and
    # ``no_icons`` says why) until control limits are set.
    variation: Icon | None = None
    assurance: Icon | None = None
    no_icons: str = ""

    @property
    def rows(self) -> list[dict]:
        return [
            {
                "label": p.label,
                "display": p.display,
                "meets_target": p.meets_target,
                "centre": self.fmt(p.mean),
                "limits": (
                    f"{self.fmt(p.lower)} to {self.fmt(p.upper)}"
                    if p.lower is not None and p.upper is not None
                    else ""
                ),
                "signal": (
                    f"{p.effect.capitalize()}: {', '.join(_rule_text(r) for r in p.rules)}"
                    if p.effect
                    else ""
                ),
            }
            for p in self.points
        ]

    def fmt(self, value: float | None) -> str:
        if value is None:
            return ""
        text = spc.format_number(value, 3 if abs(value) >= 1 else 4)
        return f"{text}%" if self.unit == "%" else text


def _effect(point: spc.Point | None) -> str:
    if point is None or point.classification is None:
        return ""
    return point.classification.value


def chart_for(
    verdict: IndicatorVerdict,
    *,
    chart_id: str,
    monitored: MonitoredIndicator | None = None,
    period_start: datetime.date | None = None,
    deteriorations: list[Deterioration] = (),  # type: ignore[assignment]
) -> ChartSpec:
    """The chart of one indicator's whole series, as the engine judged it; with the
    monitoring floor, the frozen reference limits and the deteriorations when the plan
    is in (or was in) monitoring."""
    ind = verdict.indicator
    assurance = verdict.assurance
    scale = float(assurance.scale)
    result = assurance.assessment.result
    engine_points = list(result.points) if result is not None else []
    points: list[ChartPoint] = []
    for i, m in enumerate(verdict.measurements):
        ep = engine_points[i] if i < len(engine_points) else None
        limits = ep.limits if ep is not None else None
        points.append(
            ChartPoint(
                label=day(m.measured_on),
                value=float(m.value),
                display=m.value_display(),
                meets_target=ind.meets_target(m.value),
                effect=_effect(ep),
                rules=tuple(ep.rules) if ep is not None else (),
                mean=limits.mean * scale if limits else None,
                lower=limits.lower * scale if limits else None,
                upper=limits.upper * scale if limits else None,
            )
        )
    centre_name = "mean"
    if isinstance(result, spc.RunChartResult):
        centre_name = "median"
        for p in points:
            p.mean = result.centre * scale
    markers: list[tuple[int, str]] = []
    if isinstance(result, spc.ChartResult) and len(result.partitions) > 1:
        for part in result.partitions[1:]:
            label = "Baseline ends" if part.inherited_from is not None else "Limits recalculated"
            markers.append((part.first, label))
    window_from = None
    if verdict.criteria.window_start is not None:
        window_from = next(
            i
            for i, m in enumerate(verdict.measurements)
            if m.measured_on >= verdict.criteria.window_start
        )
    floor = floor_label = None
    if monitored is not None and period_start is not None:
        start = next(
            (i for i, m in enumerate(verdict.measurements) if m.measured_on >= period_start),
            None,
        )
        if start is not None:
            markers.append((start, "Monitoring starts"))
            window_from = None  # the window belongs to the live phase, not to monitoring
            # Frozen limits only from a reference long enough to lock them on (a period
            # begun before that rule kept limits from fewer results: not drawn).
            if monitored.reference_mean is not None and limits_apply(monitored):
                for p in points[start:]:
                    p.mean = float(monitored.reference_mean)
                    p.lower = float(monitored.reference_lower)  # type: ignore[arg-type]
                    p.upper = float(monitored.reference_upper)  # type: ignore[arg-type]
            else:
                for p in points[start:]:
                    p.mean = p.lower = p.upper = None
        if monitored.floor is not None:
            floor = float(monitored.floor)
            floor_label = f"Floor {short_value(ind, monitored.floor)}"
        flagged: dict[int, list[str]] = {}
        for d in deteriorations:
            flagged.setdefault(d.measurement_id, []).append(d.rule)
        for p, m in zip(points, verdict.measurements, strict=True):
            if m.pk in flagged:
                p.effect = "concern"
                p.rules = tuple(dict.fromkeys((*p.rules, *flagged[m.pk])))
    # A proportion is never below 0 or above 100 %: neither are the limits drawn.
    for p in points:
        if p.lower is not None and p.upper is not None:
            p.lower, p.upper = clip_limits(ind, p.lower, p.upper)
    summary = f"{verdict.criteria.headline()}. {assurance.summary()}."
    # The method only when there was enough data for one: the summary says when not.
    method = f", {assurance.method_label.lower()}" if assurance.is_judged else ""
    reference_applies = bool(
        monitored is not None
        and monitored.reference_mean is not None
        and period_start is not None
        and verdict.measurements
        and verdict.measurements[-1].measured_on >= period_start
    )
    variation, assured, no_icons = _icons(verdict, points, monitored if reference_applies else None)
    return ChartSpec(
        chart_id=chart_id,
        title=f"{ind.name}: {plural(len(points), 'result')}{method}",
        unit=ind.unit,
        method_label=assurance.method_label,
        points=points,
        centre_name=centre_name,
        target=float(ind.target),
        target_label=f"Target {ind.target_display()}",
        floor=floor,
        floor_label=floor_label or "",
        markers=sorted(markers),
        window_from=window_from,
        summary=summary,
        notes=_notes(verdict),
        variation=variation,
        assurance=assured,
        no_icons=no_icons,
    )


def _position(dates: list[datetime.date], when: datetime.date) -> float:
    """Where a date falls on a chart whose points are evenly spaced: on a result's date,
    at that result; between two results, in proportion to the days between them; before
    the first or after the last, at the chart's edge."""
    if not dates or when < dates[0]:
        return -0.5
    if when > dates[-1]:
        return len(dates) - 0.5
    for i, on in enumerate(dates):
        if on == when:
            return float(i)
        if on > when:
            before = dates[i - 1]
            return i - 1 + (when - before).days / (on - before).days
    return float(len(dates) - 1)  # pragma: no cover - the loop always returns


def _notes(verdict: IndicatorVerdict) -> list[ChartNote]:
    dates = [m.measured_on for m in verdict.measurements]
    notes = []
    for number, a in enumerate(verdict.annotations, start=1):
        at = _position(dates, a.noted_on)
        if a.is_rebase and at == int(at):
            at -= 0.5  # on the step where the new limits begin
        notes.append(
            ChartNote(
                number=number,
                position=at,
                date_label=day(a.noted_on),
                kind_label=Annotation.Kind(a.kind).label,
                text=a.text,
                is_rebase=a.is_rebase,
            )
        )
    return notes


def _icons(
    verdict: IndicatorVerdict, points: list[ChartPoint], reference: MonitoredIndicator | None
) -> tuple[Icon | None, Icon | None, str]:
    """Making Data Count's variation and assurance icons for the latest result, as the
    chart shows it (SPC.md §5): its special-cause state, and the target against the
    process limits it is judged by (the frozen reference in monitoring). None until the
    latest result has control limits: MDC shows no icons on a run chart."""
    if reference is not None and len(reference.reference_values) < MIN_PARTITION_POINTS:
        # Limits frozen from too few results are not Making Data Count limits (nor
        # drawn: audits.deterioration.limits_apply).
        return (
            None,
            None,
            "No variation or assurance icons: the frozen reference has "
            f"{len(reference.reference_values)} results, and Making Data Count sets limits "
            f"from at least {MIN_PARTITION_POINTS}.",
        )
    latest = points[-1] if points else None
    if latest is None or latest.lower is None or latest.upper is None:
        if len(points) < MIN_SPC_POINTS:
            why = (
                "No variation or assurance icons yet: Making Data Count shows them once "
                f"control limits are set, from {MIN_SPC_POINTS} results ({len(points)} so far)."
            )
        else:
            why = "No variation or assurance icons: the latest result has no control limits."
        return None, None, why
    ind = verdict.indicator
    higher = ind.direction == Indicator.Direction.HIGHER
    if latest.effect == "improvement":
        variation = VARIATION_ICONS["improvement-high" if higher else "improvement-low"]
    elif latest.effect == "concern":
        variation = VARIATION_ICONS["concern-low" if higher else "concern-high"]
    else:
        variation = VARIATION_ICONS["common"]
    assured = None
    if reference is not None:
        # The same inclusive comparison as the engine's (MDC SQL v2.1), on the stored
        # frozen limits, exactly.
        target, lower, upper = ind.target, reference.reference_lower, reference.reference_upper
        passes = target <= lower if higher else target >= upper  # type: ignore[operator]
        fails = target >= upper if higher else target <= lower  # type: ignore[operator]
        icon = (
            spc.AssuranceIcon.PASS
            if passes
            else spc.AssuranceIcon.FAIL
            if fails
            else spc.AssuranceIcon.HIT_OR_MISS
        )
        assured = ASSURANCE_ICONS[icon]
    else:
        result = verdict.assurance.assessment.result
        if isinstance(result, spc.ChartResult) and result.assurance is not None:
            assured = ASSURANCE_ICONS[result.assurance.icon]
    return variation, assured, ""


# --- Drawing --------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:.1f}"


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = high - low or 1.0
    raw = span / count
    magnitude = 10 ** int(f"{raw:e}".split("e")[1])
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = (low // step + 1) * step
    ticks = []
    value = first
    while value < high:
        ticks.append(round(value, 10))
        value += step
    return ticks


def render_svg(spec: ChartSpec) -> SafeString:
    """The chart as one ``<svg>`` element (safe to place in a template as is)."""
    cid = escape(spec.chart_id)
    pts = spec.points
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [p.value for p in pts]
    for p in pts:
        values += [v for v in (p.mean, p.lower, p.upper) if v is not None]
    values += [v for v in (spec.target, spec.floor) if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.08 or 1.0
    low, high = low - pad, high + pad
    if spec.unit == "%":
        low, high = max(low, 0.0), min(high, 100.0 + pad / 2)
    n = max(len(pts), 1)
    step = plot_w / n

    def x(i: float) -> float:
        return LEFT + step * (i + 0.5)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (v - low) / (high - low))

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-labelledby="{cid}-title {cid}-desc" '
        f'font-family="{escape(FONT)}" font-size="11" class="qip-chart">',
        f'<title id="{cid}-title">{escape(spec.title)}</title>',
        f'<desc id="{cid}-desc">{escape(_description(spec))}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    if spec.window_from is not None and pts:
        wx = x(spec.window_from) - step / 2
        out.append(
            f'<rect x="{_n(wx)}" y="{TOP}" width="{_n(LEFT + plot_w - wx)}" height="{plot_h}" '
            f'fill="{WINDOW}"/>'
            f'<text x="{LEFT + plot_w - 4}" y="{TOP + plot_h - 6}" text-anchor="end" '
            f'fill="#1e4d2b">{escape(spec.window_label)}</text>'
        )
    # Axes and gridlines.
    for tick in _nice_ticks(low, high):
        ty = y(tick)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_n(ty)}" y2="{_n(ty)}" '
            f'stroke="#d8dde0" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{_n(ty + 4)}" text-anchor="end" fill="{INK}">'
            f"{escape(spec.fmt(tick))}</text>"
        )
    out.append(
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}" stroke="{INK}"/>'
        f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
        f'stroke="{INK}"/>'
    )
    every = max(1, -(-len(pts) // 8))
    for i, p in enumerate(pts):
        if i % every == 0 or i == len(pts) - 1 and len(pts) <= 8:
            out.append(
                f'<text x="{_n(x(i))}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                f'fill="{INK}">{escape(p.label)}</text>'
            )
    # Phase changes.
    for index, label in spec.markers:
        mx = x(index) - step / 2
        out.append(
            f'<line x1="{_n(mx)}" x2="{_n(mx)}" y1="{TOP}" y2="{TOP + plot_h}" stroke="{INK}" '
            f'stroke-dasharray="2 3"/>'
            f'<text x="{_n(mx + 3)}" y="{TOP + plot_h - 6}" fill="{INK}">{escape(label)}</text>'
        )
    # Centre line and process limits, as steps (p-chart limits vary point by point).
    labels: list[tuple[float, str, str, bool]] = []  # (y, text, colour, bold) at the right
    for attr, colour, dash, name in (
        ("mean", LIMIT, "", spec.centre_name.capitalize()),
        ("lower", LIMIT, "6 4", "Lower limit"),
        ("upper", LIMIT, "6 4", "Upper limit"),
    ):
        path = _step_path([getattr(p, attr) for p in pts], x, y, step)
        if path:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5"{dash_attr}/>'
            )
            last = next(getattr(p, attr) for p in reversed(pts) if getattr(p, attr) is not None)
            labels.append((y(last), f"{name} {spec.fmt(last)}", LIMIT, False))
    for value, label, colour, dash in (
        (spec.target, spec.target_label, TARGET, "8 4"),
        (spec.floor, spec.floor_label, FLOOR, "2 2"),
    ):
        if value is None:
            continue
        ty = y(value)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_n(ty)}" y2="{_n(ty)}" '
            f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>'
        )
        labels.append((ty, label, colour, True))
    for ly, text, colour, bold in _spread(labels, TOP + 4, TOP + plot_h + 4):
        weight = ' font-weight="bold"' if bold else ""
        out.append(
            f'<text x="{LEFT + plot_w + 6}" y="{_n(ly + 4)}" fill="{colour}"{weight}>'
            f"{escape(text)}</text>"
        )
    if pts:
        line = " ".join(f"{_n(x(i))},{_n(y(p.value))}" for i, p in enumerate(pts))
        out.append(f'<polyline points="{line}" fill="none" stroke="{INK}" stroke-width="1.5"/>')
    for i, p in enumerate(pts):
        out.append(_marker(x(i), y(p.value), p, spec))
    out.append(_note_flags(spec, x, plot_h))
    out.append(_legend(spec))
    out.append("</svg>")
    # Every piece of text above went through escape(); numbers are formatted floats.
    return mark_safe("".join(out))  # noqa: S308  # nosec B308 B703


def _spread(
    labels: list[tuple[float, str, str, bool]], top: float, bottom: float, gap: float = 13
) -> list[tuple[float, str, str, bool]]:
    """Line labels at the right edge, moved apart just enough not to overlap."""
    placed = sorted(labels)
    ys = [label[0] for label in placed]
    for i in range(1, len(ys)):
        ys[i] = max(ys[i], ys[i - 1] + gap)
    overflow = ys[-1] - bottom if ys else 0
    if overflow > 0:  # pushed off the bottom: shift the stack up, keeping the gaps
        ys = [v - overflow for v in ys]
        for i in range(len(ys) - 2, -1, -1):
            ys[i] = min(ys[i], ys[i + 1] - gap)
    ys = [max(v, top) for v in ys]
    return [(v, *label[1:]) for v, label in zip(ys, placed, strict=True)]


def _step_path(values: list[float | None], x, y, step: float) -> str:
    parts: list[str] = []
    pen_down = False
    for i, v in enumerate(values):
        if v is None:
            pen_down = False
            continue
        x0, x1, yy = x(i) - step / 2, x(i) + step / 2, y(v)
        parts.append(f"{'L' if pen_down else 'M'}{_n(x0)},{_n(yy)} L{_n(x1)},{_n(yy)}")
        pen_down = True
    return " ".join(parts)


def _marker(cx: float, cy: float, p: ChartPoint, spec: ChartSpec) -> str:
    state = {"concern": "special cause concern", "improvement": "special cause improvement"}.get(
        p.effect, "special cause variation" if p.effect else "common cause"
    )
    tip = f"<title>{escape(p.label)}: {escape(p.display)} ({escape(state)})</title>"
    if p.effect == "concern":
        s = 6
        return (
            f'<path d="M{_n(cx)},{_n(cy - s)} L{_n(cx + s)},{_n(cy)} L{_n(cx)},{_n(cy + s)} '
            f'L{_n(cx - s)},{_n(cy)} Z" fill="{ORANGE}" stroke="{INK}" stroke-width="1">'
            f"{tip}</path>"
        )
    if p.effect == "improvement":
        return (
            f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="5.5" fill="{BLUE}" stroke="#ffffff" '
            f'stroke-width="1.5">{tip}</circle>'
        )
    if p.effect == "neutral":
        return (
            f'<rect x="{_n(cx - 4.5)}" y="{_n(cy - 4.5)}" width="9" height="9" fill="{PURPLE}">'
            f"{tip}</rect>"
        )
    return f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="4" fill="{GREY}">{tip}</circle>'


def _note_flags(spec: ChartSpec, x, plot_h: float) -> str:
    """Each note as a numbered flag on a dotted line at its date; flags that would
    overlap are stacked. The number matches the list under the chart; the note's own
    words are in the flag's tooltip and in the chart's description."""
    out = []
    last_x, row = -100.0, 0
    for note in spec.notes:
        nx = max(x(note.position), LEFT + 9)  # a flag at the edge stays inside the plot
        row = row + 1 if nx - last_x < 18 else 0
        last_x = nx
        fy = TOP + 9 + 18 * (row % 4)
        tip = f"<title>Note {note.number}: {escape(note.sentence)}</title>"
        out.append(
            f'<g class="qip-note">{tip}'
            f'<line x1="{_n(nx)}" x2="{_n(nx)}" y1="{_n(fy)}" y2="{TOP + plot_h}" '
            f'stroke="{NOTE}" stroke-width="1" stroke-dasharray="1 3"/>'
            f'<rect x="{_n(nx - 8)}" y="{_n(fy - 8)}" width="16" height="16" rx="3" '
            f'fill="{NOTE}"/>'
            f'<text x="{_n(nx)}" y="{_n(fy + 4)}" text-anchor="middle" fill="#ffffff" '
            f'font-weight="bold">{note.number}</text></g>'
        )
    return "".join(out)


def _legend(spec: ChartSpec) -> str:
    ly = HEIGHT - 22
    items = [
        f'<circle cx="{LEFT + 4}" cy="{ly - 4}" r="4" fill="{GREY}"/>'
        f'<text x="{LEFT + 12}" y="{ly}" fill="{INK}">Common cause</text>',
        f'<circle cx="{LEFT + 110}" cy="{ly - 4}" r="5" fill="{BLUE}"/>'
        f'<text x="{LEFT + 118}" y="{ly}" fill="{INK}">Improvement</text>',
        f'<path d="M{LEFT + 212},{ly - 10} L{LEFT + 218},{ly - 4} L{LEFT + 212},{ly + 2} '
        f'L{LEFT + 206},{ly - 4} Z" fill="{ORANGE}" stroke="{INK}" stroke-width="1"/>'
        f'<text x="{LEFT + 224}" y="{ly}" fill="{INK}">Concern</text>',
        f'<line x1="{LEFT + 290}" x2="{LEFT + 316}" y1="{ly - 4}" y2="{ly - 4}" '
        f'stroke="{LIMIT}" stroke-width="1.5" stroke-dasharray="6 4"/>'
        f'<text x="{LEFT + 322}" y="{ly}" fill="{INK}">Process limits</text>',
        f'<line x1="{LEFT + 420}" x2="{LEFT + 446}" y1="{ly - 4}" y2="{ly - 4}" '
        f'stroke="{TARGET}" stroke-width="2" stroke-dasharray="8 4"/>'
        f'<text x="{LEFT + 452}" y="{ly}" fill="{INK}">Target</text>',
    ]
    if any(p.effect == "neutral" for p in spec.points):
        items.append(
            f'<rect x="{LEFT}" y="{ly + 6}" width="9" height="9" fill="{PURPLE}"/>'
            f'<text x="{LEFT + 14}" y="{ly + 14}" fill="{INK}">Non-random variation, no '
            "direction (run chart)</text>"
        )
    if spec.notes:
        items.append(
            f'<rect x="{LEFT + 290}" y="{ly + 6}" width="11" height="11" rx="2" fill="{NOTE}"/>'
            f'<text x="{LEFT + 306}" y="{ly + 15}" fill="{INK}">Note (numbered as listed '
            "below the chart)</text>"
        )
    if spec.floor is not None:
        items.append(
            f'<line x1="{LEFT + 505}" x2="{LEFT + 531}" y1="{ly - 4}" y2="{ly - 4}" '
            f'stroke="{FLOOR}" stroke-width="2" stroke-dasharray="2 2"/>'
            f'<text x="{LEFT + 537}" y="{ly}" fill="{INK}">Floor</text>'
        )
    return "".join(items)


def _description(spec: ChartSpec) -> str:
    """The text alternative: what the chart shows, in a few sentences."""
    if not spec.points:
        return f"No results yet. {spec.target_label}."
    first, last = spec.points[0], spec.points[-1]
    if len(spec.points) == 1:
        seen = f"One result, on {first.label}: {last.display}."
    else:
        seen = (
            f"{len(spec.points)} results from {first.label} to {last.label}; the latest is "
            f"{last.display}."
        )
    parts = [
        seen,
        f"{spec.target_label}.",
    ]
    if spec.floor_label:
        parts.append(f"Monitoring {spec.floor_label.lower()}.")
    if last.mean is not None:
        limits = ""
        if last.lower is not None and last.upper is not None:
            limits = f", process limits {spec.fmt(last.lower)} to {spec.fmt(last.upper)}"
        parts.append(f"{spec.centre_name.capitalize()} {spec.fmt(last.mean)}{limits}.")
    flagged = [p for p in spec.points if p.effect]
    if flagged:
        parts.append(
            "Signals at "
            + ", ".join(f"{p.label} ({p.effect})" for p in flagged[:6])
            + (f" and {len(flagged) - 6} more" if len(flagged) > 6 else "")
            + "."
        )
    parts.append(spec.summary)
    if spec.notes:
        parts.append(
            "Notes: " + "; ".join(f"{n.number}, {n.sentence.rstrip('.')}" for n in spec.notes) + "."
        )
    parts.append("The data table below the chart lists every result.")
    return " ".join(parts)


# --- Making Data Count icons ------------------------------------------------------------
# Drawn here, after the icons' published meaning (SPC.md §5): a circle whose colour,
# letter and inner shape each tell the state, so colour is never the only cue.

_ICON_COLOURS = {
    "common": GREY_INK,
    "improvement-high": BLUE,
    "improvement-low": BLUE,
    "concern-high": ORANGE_INK,
    "concern-low": ORANGE_INK,
    "pass": BLUE,
    "hit-or-miss": GREY_INK,
    "fail": ORANGE_INK,
}


def _icon_body(code: str, colour: str) -> str:
    """The inside of a 40 x 40 icon."""
    if code == "common":
        dots = [(10, 22), (15, 18), (20, 23), (25, 17), (30, 21)]
    elif code.endswith("-high"):
        dots = [(10, 27), (15, 26), (20, 20), (25, 15), (30, 13)]
    elif code.endswith("-low"):
        dots = [(10, 13), (15, 14), (20, 20), (25, 25), (30, 27)]
    else:
        dots = []
    if dots:
        line = " ".join(f"{a},{b}" for a, b in dots)
        body = f'<polyline points="{line}" fill="none" stroke="{GREY_INK}" stroke-width="1.5"/>'
        special = code != "common"
        for i, (a, b) in enumerate(dots):
            fill = colour if special and i >= 3 else GREY_INK
            body += f'<circle cx="{a}" cy="{b}" r="2.6" fill="{fill}"/>'
        if special:
            letter, ly = ("H", 12) if code.endswith("-high") else ("L", 36)
            body += (
                f'<text x="20" y="{ly}" text-anchor="middle" font-size="10" font-weight="bold" '
                f'fill="{colour}">{letter}</text>'
            )
        return body
    if code == "hit-or-miss":
        # The target line, crossed by results that land either side of it.
        return (
            f'<line x1="7" x2="33" y1="20" y2="20" stroke="{TARGET}" stroke-width="1.5" '
            'stroke-dasharray="3 2"/>'
            f'<polyline points="9,26 14,14 19,25 24,13 29,24 32,17" fill="none" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
    letter = "P" if code == "pass" else "F"
    return (
        f'<text x="20" y="26" text-anchor="middle" font-size="17" font-weight="bold" '
        f'fill="{colour}">{letter}</text>'
    )


def render_icon(icon: Icon, *, size: int = 40) -> SafeString:
    """One icon as an accessible inline SVG: ``role="img"`` named by its text."""
    colour = _ICON_COLOURS[icon.code]
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40" width="{size}" '
        f'height="{size}" role="img" aria-label="{escape(icon.text)}" '
        f'font-family="{escape(FONT)}" class="qip-icon qip-icon-{icon.code}">'
        f"<title>{escape(icon.text)}</title>"
        f'<circle cx="20" cy="20" r="18" fill="#ffffff" stroke="{colour}" stroke-width="3"/>'
        f"{_icon_body(icon.code, colour)}</svg>"
    )
    # Every text went through escape(); the rest is fixed markup.
    return mark_safe(svg)  # noqa: S308  # nosec B308 B703


def render_icons(spec: ChartSpec, *, size: int = 40, labels: bool = True) -> SafeString:
    """Both icons of a chart, each with its short label beside it (``labels``), or the
    reason there are none."""
    if spec.variation is None:
        return mark_safe(  # noqa: S308  # nosec B308 B703 - escaped
            f'<span class="qip-icons qip-icons-none small text-body-secondary">'
            f"{escape(spec.no_icons)}</span>"
        )
    parts = []
    for icon in (spec.variation, spec.assurance):
        if icon is None:
            continue
        label = f'<span class="qip-icon-label">{escape(icon.label)}</span>' if labels else ""
        parts.append(f'<span class="qip-icon-item">{render_icon(icon, size=size)}{label}</span>')
    if spec.assurance is None:
        parts.append(
            '<span class="qip-icon-item small text-body-secondary">Assurance not assessed: no '
            "target against these limits</span>"
        )
    return mark_safe(  # noqa: S308  # nosec B308 B703 - built from escaped parts
        f'<span class="qip-icons">{"".join(parts)}</span>'
    )


def table_rows_html(spec: ChartSpec) -> SafeString:
    """The rows of the chart's data table (``<tr>`` elements), built here rather than
    by a template loop: a plan page draws hundreds of them."""
    cells = []
    for r in spec.rows:
        cells.append(
            f'<tr><th scope="row" class="fw-normal text-nowrap">{escape(r["label"])}</th>'
            f"<td>{escape(r['display'])}</td>"
            f"<td>{'Met' if r['meets_target'] else 'Not met'}</td>"
            f'<td>{escape(r["centre"])}</td><td class="text-nowrap">{escape(r["limits"])}</td>'
            f"<td>{escape(r['signal'])}</td></tr>"
        )
    return mark_safe("".join(cells))  # noqa: S308  # nosec B308 B703 - every text escaped


def drawn_chart(
    verdict: IndicatorVerdict,
    *,
    chart_id: str,
    monitored: MonitoredIndicator | None = None,
    period_start: datetime.date | None = None,
    deteriorations: list[Deterioration] = (),  # type: ignore[assignment]
    icon_sizes: tuple[tuple[int, bool], ...] = ((40, True),),
    table: bool = False,
) -> dict:
    """``chart_for`` and what is drawn from it (the SVG, the icons at each of
    ``icon_sizes`` as ``(size, labels)``, the data table's rows when ``table``),
    memoised under a digest of exactly these inputs (``core.memo``): the verdict with
    its results, annotations and engine output, the monitoring rows, the chart's id.
    A change elsewhere in the plan (an action, evidence, a decision) draws nothing
    again; a change to any of these draws this chart again. Plain values only:
    ``spec`` (dataclasses of strings and numbers) and strings."""
    from core.memo import memoised

    def draw() -> dict:
        spec = chart_for(
            verdict,
            chart_id=chart_id,
            monitored=monitored,
            period_start=period_start,
            deteriorations=deteriorations,
        )
        return {
            "spec": spec,
            "svg": str(render_svg(spec)),
            "icons": [str(render_icons(spec, size=s, labels=lab)) for s, lab in icon_sizes],
            "table": str(table_rows_html(spec)) if table else "",
        }

    inputs = (verdict, chart_id, monitored, period_start, list(deteriorations), icon_sizes, table)
    drawn = memoised("chart", inputs, draw)
    # Marked safe again on the way out (the cache holds plain strings): built by the
    # renderers above, every text escaped.
    return {
        "spec": drawn["spec"],
        "svg": mark_safe(drawn["svg"]),  # noqa: S308  # nosec B308 B703
        "icons": [mark_safe(i) for i in drawn["icons"]],  # noqa: S308  # nosec B308 B703
        "table": mark_safe(drawn["table"]),  # noqa: S308  # nosec B308 B703
    }
