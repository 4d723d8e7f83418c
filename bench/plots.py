"""Plots for docs/performance.md from the newest raw results in bench/results/.

    python -m bench.plots

Writes docs/perf-core.png (our cases against their same-run references), docs/perf-http.png
(requests/s of the service against the bare ASGI reference, 1 and 2 processes) and
docs/perf-sse.png (how long a stock change takes to reach every live client).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).parent / "results"
DOCS = Path(__file__).parent.parent / "docs"


def newest(prefix: str) -> dict[str, Any] | None:
    files = sorted(RESULTS.glob(f"{prefix}-*.json"))
    return json.loads(files[-1].read_text()) if files else None


def core(data: dict[str, Any]) -> None:
    rows = [r for r in data["table"] if r.get("ratio") is not None]
    names = [r["case"] for r in rows]
    ratios = [r["ratio"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.2))
    ax.barh(range(len(rows)), ratios, color="#2857d6")
    ax.set_yticks(range(len(rows)), names)
    ax.axvline(1.0, color="#667085", linestyle="--", linewidth=1)
    ax.invert_yaxis()
    ax.set_xlabel("ratio to the reference measured in the same run")
    for y, v in enumerate(ratios):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
    ax.set_title("Core: pushinbox vs its references (medians)")
    fig.tight_layout()
    fig.savefig(DOCS / "perf-core.png", dpi=110)
    plt.close(fig)


def http(data: dict[str, Any]) -> None:
    med = data["medians"]
    cases = [f"{k}/{n}" for n in (1, 2)
             for k in ("bare", "next", "cycle", "cycle+log", "cycle+framework", "ingest",
                       "ingest+framework") if f"{k}/{n}" in med]
    fig, ax = plt.subplots(figsize=(14, 3.8))
    colors = ["#98a2b3" if c.startswith("bare") else
              "#b54708" if "+framework" in c else "#2857d6" for c in cases]
    ax.bar(cases, [med[c]["rps"] for c in cases], color=colors)
    for x, c in enumerate(cases):
        ax.text(x, med[c]["rps"], f"{med[c]['rps']:,.0f}\np99 {med[c]['p99_ms']:.0f} ms",
                ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("requests/s (median)")
    ax.set_title("HTTP: bare ASGI + one Lua call (grey) vs the service, 1 and 2 processes "
                 "(orange: the short path off; ingest: one message per request)")
    ax.tick_params(axis="x", labelsize=7)
    ax.margins(y=0.25)
    fig.tight_layout()
    fig.savefig(DOCS / "perf-http.png", dpi=110)
    plt.close(fig)


def sse(data: dict[str, Any]) -> None:
    rows = data["changes"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    xs = [f"change {r['change']}" for r in rows]
    for key, color in (("p50_ms", "#12805c"), ("p99_ms", "#2857d6"), ("max_ms", "#b54708")):
        ax.plot(xs, [r[key] for r in rows], marker="o", color=color, label=key[:-3])
    ax.axhline(100, color="#667085", linestyle="--", linewidth=1, label="target p99")
    ax.set_ylabel("ms until a client has the new stock")
    ax.set_title(f"Live updates: {data['clients']} SSE clients of one team, one process")
    ax.legend()
    fig.tight_layout()
    fig.savefig(DOCS / "perf-sse.png", dpi=110)
    plt.close(fig)


def main() -> None:
    for prefix, draw in (("core", core), ("http", http), ("sse", sse)):
        data = newest(prefix)
        if data is None:
            print(f"no {prefix} results yet: run its benchmark first")
            continue
        try:
            draw(data)
            print(f"docs/perf-{prefix}.png written")
        except KeyError as exc:
            print(f"{prefix}: results of an older format ({exc}); re-run the benchmark")


if __name__ == "__main__":
    main()
