"""Aggregate run records into the model-card table: terminal (rich), Markdown, JSON and PR curves."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from gnnsec.evaluate.metrics import mean_std
from gnnsec.evaluate.runner import EVAL_LABELS, GNN_KINDS, RunRecord

METRIC_NAMES = ("auc", "f1", "ap", "precision", "recall", "mcc")
HEADER_NAMES = {"auc": "AUC", "f1": "F1", "ap": "AP", "precision": "P", "recall": "R", "mcc": "MCC"}


def aggregate(records: list[RunRecord]) -> list[dict[str, Any]]:
    """One row per (model, mode, relation subset): mean, std and n of every metric over seeds and splits."""
    groups: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
    for record in records:
        groups[(record.row, record.mode, record.relations)].append(record)
    rows = []
    for (name, mode, relations), runs in groups.items():
        row: dict[str, Any] = {
            "model": name,
            "type": ("GNN" if runs[0].model in GNN_KINDS and runs[0].model != "mlp" else "features")
            + (" sup." if mode == "supervised" else " unsup."),
            "mode": mode,
            "relations": relations,
            "params": runs[0].params,
            "runs": len(runs),
            "splits": sorted({r.split for r in runs}),
            "seconds": sum(r.seconds for r in runs),
        }
        for label in EVAL_LABELS:
            present = [r.labels[label] for r in runs if label in r.labels]
            if not present:
                continue
            row[f"{label}_support"] = sum(m.support for m in present) / len(present)
            for metric in METRIC_NAMES:
                row[f"{label}_{metric}"] = mean_std([getattr(m, metric) for m in present])
        for edge in ("edge_auc", "edge_ap"):
            row[edge] = mean_std([getattr(r, edge) for r in runs])
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if not isinstance(value, tuple):
        return str(value)
    mean, std, n = value
    if n == 0 or not math.isfinite(mean):
        return "–"
    return f"{mean:.3f}" if n == 1 else f"{mean:.3f}±{std:.3f}"


def columns(rows: list[dict[str, Any]]) -> list[str]:
    labels = [label for label in EVAL_LABELS if any(f"{label}_auc" in r for r in rows)]
    cols = ["Model", "Type", "Params"]
    for label in labels:
        cols += [f"{label}_{HEADER_NAMES[m]}" for m in METRIC_NAMES]
    return [*cols, "Edge_AUC", "Edge_AP"]


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    cols = columns(rows)
    for row in rows:
        cells = [row["model"], row["type"], f"{row['params']:,}" if row["params"] else "–"]
        for col in cols[3:-2]:
            label, short = col.split("_", 1)
            metric = next(k for k, v in HEADER_NAMES.items() if v == short)
            cells.append(_cell(row.get(f"{label}_{metric}", (math.nan, math.nan, 0))))
        cells += [_cell(row["edge_auc"]), _cell(row["edge_ap"])]
        out.append(cells)
    return out


def markdown(rows: list[dict[str, Any]], command: str, notes: list[str]) -> str:
    cols = columns(rows)
    lines = [f"Command: `{command}`", "", "| " + " | ".join(cols) + " |"]
    lines.append("|" + "---|" * len(cols))
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(rows)]
    first = rows[0] if rows else {}
    support = {label: first.get(f"{label}_support") for label in EVAL_LABELS if f"{label}_support" in first}
    lines += ["", "Test positives per run: " + ", ".join(f"{k} {v:g}" for k, v in support.items() if v is not None)]
    lines += ["", *notes]
    return "\n".join(lines) + "\n"


TERMINAL_METRICS = ("auc", "ap", "f1", "mcc")
TERMINAL_COLUMNS = ("model", "label", *(HEADER_NAMES[m] for m in TERMINAL_METRICS))
"""The terminal's results table: one line per model and label (and its test relationships), so it fits 80
columns; precision, recall, parameters and times stay in the Markdown and JSON files of ``--out``."""


def terminal_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Cells for :data:`TERMINAL_COLUMNS`: each model's labels that were measured, then ``edges`` where the
    model scores relationships (GNN rows)."""
    out = []
    for row in rows:
        for label in EVAL_LABELS:
            if f"{label}_auc" in row:
                out.append([row["model"], label, *(_cell(row[f"{label}_{m}"]) for m in TERMINAL_METRICS)])
        if row["edge_auc"][2] or row["edge_ap"][2]:
            out.append([row["model"], "edges", _cell(row["edge_auc"]), _cell(row["edge_ap"]), "–", "–"])
    return out


def model_types(rows: list[dict[str, Any]]) -> str:
    """One line naming each model's type and size, e.g. ``rgcn (GNN unsup., 12,345 params)``."""
    parts = [f"{row['model']} ({row['type']}" + (f", {row['params']:,} params)" if row["params"] else ")")
             for row in rows]
    return "Models: " + ", ".join(parts) + ". Precision, recall and the whole card: --out (table.md, results.json)."


def rich_table(rows: list[dict[str, Any]], title: str) -> Any:
    """Every column of the card as one rich table (wide: for a file or a wide terminal, not the CLI's default)."""
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in columns(rows):
        table.add_column(col, justify="left" if col in ("Model", "Type") else "right", no_wrap=True)
    for cells in table_rows(rows):
        table.add_row(*cells)
    return table


def flat_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's rows for ``gnnsec eval --format json|jsonl|csv``: the same keys on every row (null where a
    label or metric has no value), each metric as its mean (``User_auc``) and standard deviation
    (``User_auc_std``) over seeds and splits (docs/findings.md)."""

    def number(value: float) -> float | None:
        return float(value) if value is not None and math.isfinite(value) else None

    out = []
    for row in rows:
        flat: dict[str, Any] = {key: row[key] for key in ("model", "type", "mode", "relations", "params", "runs")}
        flat["splits"] = list(row["splits"])
        flat["seconds"] = round(float(row["seconds"]), 3)
        for label in EVAL_LABELS:
            flat[f"{label}_support"] = number(row.get(f"{label}_support", math.nan))
            for metric in METRIC_NAMES:
                mean, std, n = row.get(f"{label}_{metric}", (math.nan, math.nan, 0))
                flat[f"{label}_{metric}"] = number(mean) if n else None
                flat[f"{label}_{metric}_std"] = number(std) if n else None
        for edge in ("edge_auc", "edge_ap"):
            mean, std, n = row[edge]
            flat[edge] = number(mean) if n else None
            flat[f"{edge}_std"] = number(std) if n else None
        out.append(flat)
    return out


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def pr_curves(records: list[RunRecord], out: Path) -> list[Path]:
    """One PNG per label: the precision-recall curve of each row's first run on the test split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    written = []
    for label in EVAL_LABELS:
        seen: set[str] = set()
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for record in records:
            key = f"{record.row} ({record.mode[:5]})"
            if label not in record.curves or key in seen:
                continue
            seen.add(key)
            truth, scores = record.curves[label]
            precision, recall, _ = precision_recall_curve(truth, scores)
            ax.step(recall, precision, where="post", label=f"{key} AP={record.labels[label].ap:.2f}")
        if not seen:
            plt.close(fig)
            continue
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(f"{label}: precision-recall on the test split")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7, loc="upper right")
        path = out / f"pr_{label}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def write_outputs(records: list[RunRecord], out: Path, command: str, config: dict[str, Any],
                  notes: list[str]) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    rows = aggregate(records)
    (out / "table.md").write_text(markdown(rows, command, notes), encoding="utf-8")
    runs = [
        {"model": r.model, "mode": r.mode, "relations": r.relations, "split": r.split, "seed": r.seed,
         "params": r.params, "seconds": r.seconds, "edge_auc": r.edge_auc, "edge_ap": r.edge_ap,
         "labels": {k: v.to_dict() for k, v in r.labels.items()}}
        for r in records
    ]
    payload = {"command": command, "config": config, "rows": rows, "runs": runs, "notes": notes}
    (out / "results.json").write_text(json.dumps(_json_ready(payload), indent=2), encoding="utf-8")
    paths = {"markdown": out / "table.md", "json": out / "results.json"}
    for path in pr_curves(records, out):
        paths[path.stem] = path
    return paths
