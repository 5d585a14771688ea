"""Turns trial records into the Markdown tables of bench/README.md."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from scenarios import SCENARIOS, Scenario

TIMES = "\u00d7"  # multiplication sign, for ratios
DASH = "\u2013"  # en dash, for ranges

MODES = {
    "same": "same library on both ends",
    "server": "server only (fixed raw client on uvloop)",
}


def figure(sc: Scenario, record: dict[str, Any]) -> float:
    """The headline number of a trial, in the scenario's unit."""
    return float(record["rate"]) * sc.scale


def cpu_per_op(record: dict[str, Any]) -> float | None:
    """Server CPU microseconds per operation (message, MiB, delivery...)."""
    if record.get("server_cpu") is None or not record.get("ops"):
        return None
    return float(record["server_cpu"]) / record["ops"] * 1e6


def fmt(x: float | None) -> str:
    if x is None:
        return DASH
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def ratio(x: float | None, ref: float | None) -> str:
    if x is None or not ref:
        return DASH
    return f"{x / ref:.2f}{TIMES}"


def summarise(
    records: list[dict[str, Any]],
) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Median, min, max of the figure and median CPU per op, per
    (loop, mode, scenario, lib); failures and n/a kept with their reason."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["loop"], r["mode"], r["scenario"], r["lib"])].append(r)
    out = {}
    for key, rs in groups.items():
        sc = SCENARIOS[key[2]]
        ok = [r for r in rs if r.get("ok")]
        na = [r for r in rs if r.get("na")]
        failed = [r for r in rs if not r.get("ok") and not r.get("na")]
        values = [figure(sc, r) for r in ok]
        cpus = [c for c in (cpu_per_op(r) for r in ok) if c is not None]
        notes = sorted({e for r in ok for e in _notes(sc, r)})
        out[key] = {
            "n": len(ok),
            "median": statistics.median(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "cpu": statistics.median(cpus) if cpus else None,
            "failed": len(failed),
            "error": failed[0]["error"] if failed else None,
            "na": na[0]["na"] if na else None,
            "notes": notes,
        }
    return out


def _notes(sc: Scenario, r: dict[str, Any]) -> list[str]:
    if sc.name in ("memory", "handshake"):  # the scenarios that offer compression
        ext = r.get("extensions") or [""]
        if ext in ([""], []) and r["lib"] != "tcp":
            return ["no compression negotiated"]
        if r["lib"] == "tcp":
            return ["plain TCP, no handshake"]
    return []


def tables(
    records: list[dict[str, Any]],
    loops: list[str],
    modes: list[str],
    scenarios: list[str],
    libs: list[str],
    baseline: str = "websockets",
) -> str:
    stats = summarise(records)
    lines: list[str] = []
    for loop in loops:
        lines.append(f"### Event loop: {loop}\n")
        for name in scenarios:
            sc = SCENARIOS[name]
            better = "lower is better" if sc.lower_is_better else "higher is better"
            cpu = "" if sc.kind == "memory" else f"; server CPU µs per {sc.cpu_unit}"
            lines.append(f"#### {sc.title} — {sc.unit} ({better}){cpu}\n")
            sc_modes = [m for m in modes if m in sc.modes]
            head = ["library"]
            for m in sc_modes:
                label = "same lib" if m == "same" else "server only"
                head += [f"{label}: median", f"min{DASH}max", f"{TIMES} {baseline}"]
                if sc.kind != "memory":
                    head += ["CPU µs", f"CPU {TIMES} {baseline}"]
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            footnotes: list[str] = []
            for lib in libs:
                row = [lib]
                for m in sc_modes:
                    s = stats.get((loop, m, name, lib))
                    ref = stats.get((loop, m, name, baseline))
                    width = 3 if sc.kind == "memory" else 5
                    if s is None:
                        row += ["not run"] + [""] * (width - 1)
                        continue
                    if s["na"]:
                        row += [f"n/a ({s['na']})"] + [""] * (width - 1)
                        continue
                    if s["median"] is None:
                        row += [f"**FAILED** ({s['failed']}{TIMES})"] + [""] * (width - 1)
                        footnotes.append(f"{lib}, {m}: {s['error']}")
                        continue
                    med = fmt(s["median"])
                    if s["failed"]:
                        med += f" ({s['failed']} failed)"
                        footnotes.append(f"{lib}, {m}: {s['error']}")
                    if s["notes"]:
                        med += "¹"
                        footnotes.append(f"{lib}: {', '.join(s['notes'])}")
                    row += [
                        med,
                        f"{fmt(s['min'])}{DASH}{fmt(s['max'])}",
                        ratio(s["median"], ref and ref["median"]),
                    ]
                    if sc.kind != "memory":
                        row += [fmt(s["cpu"]), ratio(s["cpu"], ref and ref["cpu"])]
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
            for note in dict.fromkeys(footnotes):
                lines.append(f"- {note}")
            if footnotes:
                lines.append("")
    return "\n".join(lines)


def summary(
    records: list[dict[str, Any]],
    loops: list[str],
    modes: list[str],
    scenarios: list[str],
    libs: list[str],
    baseline: str = "websockets",
) -> str:
    """One line per scenario and mode: each library's median as a ratio to
    the baseline's, websockets' by default (and server CPU per op as a
    ratio, in brackets)."""
    stats = summarise(records)
    others = [lib for lib in libs if lib != baseline]
    lines = []
    for loop in loops:
        lines.append(f"**{loop}** — median ÷ {baseline}'s median [server CPU per op ÷ {baseline}'s]\n")
        lines.append(f"| scenario | mode | {baseline} | " + " | ".join(others) + " |")
        lines.append("|---|---|---|" + "---|" * len(others))
        for name in scenarios:
            sc = SCENARIOS[name]
            for m in modes:
                if m not in sc.modes:
                    continue
                ref = stats.get((loop, m, name, baseline))
                if ref is None:
                    continue
                cells = [f"{fmt(ref['median'])} {sc.unit}" if ref["median"] is not None else "FAILED"]
                for lib in others:
                    s = stats.get((loop, m, name, lib))
                    if s is None:
                        cells.append("")
                    elif s["na"]:
                        cells.append("n/a")
                    elif s["median"] is None:
                        cells.append("FAILED")
                    else:
                        cell = ratio(s["median"], ref["median"])
                        if sc.kind != "memory" and s["cpu"] is not None:
                            cell += f" [{ratio(s['cpu'], ref['cpu'])}]"
                        cells.append(cell)
                lines.append(f"| {sc.title} | {m} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
