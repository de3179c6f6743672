"""``gnnsec score``, ``gnnsec explain`` and ``gnnsec feedback``: scores onto the graph, and back again."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.text import Text

from gnnsec.cli.common import (
    connected,
    console,
    err_console,
    neo4j_options,
    progress,
    threads_option,
    window_filter,
    window_options,
    work_progress,
)
from gnnsec.cli.output import (
    choose_format,
    emit,
    emit_one,
    format_option,
    iso_utc,
    plain,
    print_table,
    short_name,
    short_text,
)
from gnnsec.config import latest_model_path
from gnnsec.workflow import model_id_of

if TYPE_CHECKING:
    from gnnsec.gnn.checkpoint import Checkpoint


def _load(model: Path | None) -> tuple[Checkpoint, Path]:
    from gnnsec.gnn.checkpoint import CheckpointError, load_checkpoint

    path = model or latest_model_path()
    if not path.exists():
        raise click.ClickException(f"no model at {path}: run `gnnsec train` first, or pass --model")
    try:
        return load_checkpoint(path, device="cpu"), path
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc


PRINCIPAL_LABELS = ("User", "Role", "VM", "Function", "Pod", "Container", "CloudAccount")
"""Who acts: the findings list shows these by default (addresses and resources appear in their reasons)."""


def ranked_findings(node_scores: list[Any], limit: int = 10,
                    labels: tuple[str, ...] | None = PRINCIPAL_LABELS) -> list[Any]:
    """The ``limit`` top-scored entities of a run among ``labels`` (by calibrated score, then raw)."""
    shown = [s for s in node_scores if labels is None or s.label in labels]
    return sorted(shown, key=lambda s: (-s.score, -getattr(s, "raw", 0.0)))[:limit]


def print_findings(node_scores: list[Any], limit: int = 10, title: str | None = None,
                   labels: tuple[str, ...] | None = PRINCIPAL_LABELS) -> None:
    """The top-scored entities of a run with their reasons: short names, a table when it fits, else blocks."""
    rows = []
    for position, node in enumerate(ranked_findings(node_scores, limit, labels), start=1):
        score_text = Text(f"{node.score:.4f}", style="bold red" if node.anomalous else "")
        rows.append([str(position), node.label, short_name(node.uid), score_text, str(node.rank),
                     short_text("; ".join(node.reasons[:3]))])
    print_table(title or f"Top {limit} findings", ("#", "label", "entity", "score", "rank", "why"), rows,
                right=("#", "score", "rank"))


NPROC_NEEDS_GNN = (
    "--nproc splits the graph model's encoding, which only --with-gnn runs: add --with-gnn, or drop --nproc. "
    "The history detector's own scoring is vectorised and runs in one process (2.3 s for a medium estate's 3 test "
    "days, docs/scale.md)."
)


@click.command("score")
@neo4j_options
@window_options
@click.option("--all-unscored", is_flag=True,
              help="Score every complete day not yet scored, oldest first (default: only the latest one).")
@click.option("--history-days", default=30, show_default=True, type=click.IntRange(1, 3650),
              help="Days of history each day is compared with.")
@click.option("--with-gnn", is_flag=True,
              help="Add the trained model's DistMult improbability of new relationships (needs `gnnsec train`).")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Checkpoint for --with-gnn "
              "(default: latest).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Flag entities whose calibrated score is at or above this (default 0.99).")
@click.option("--floor", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="Keep a per-window (:ScoringRun)-[:SCORED]->(entity) history for scores at or above this.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where --with-gnn runs the model: auto takes a CUDA GPU when torch sees one, else the CPU.")
@threads_option
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --with-gnn: split the graph model's encoding by node across N processes on this machine "
                   "(gloo on CPU, one GPU each on CUDA); see docs/scale.md.")
@click.option("--top", default=10, show_default=True, help="Findings to print per window.")
@click.option("--all-labels", is_flag=True, help="List every label in the findings, not only principals.")
@format_option("json/jsonl: one object per scored day with its top findings; csv: one line per finding.")
def score(since: str | None, until: str | None, clouds: tuple[str, ...], accounts: tuple[str, ...],
          all_unscored: bool, history_days: int, with_gnn: bool, model: Path | None, threshold: float | None,
          floor: float, device: str, nproc: int, top: int, all_labels: bool, fmt: str | None) -> None:
    """Score each day's activity against the history before it and write the scores to Neo4j.

    The unit is (entity, day): what an identity, workload or resource did that day, next to what it and
    its peers did in the HISTORY_DAYS before. Without --since, the latest complete day not yet scored
    is scored (--all-unscored: every such day). Re-scoring a day replaces that day's scores only.
    """
    from gnnsec.workflow import score_windows, windows_to_score

    if nproc > 1 and not with_gnn:
        raise click.UsageError(NPROC_NEEDS_GNN)
    flt = window_filter(since, until, clouds, accounts)
    checkpoint, path = _load(model) if with_gnn else (None, None)
    with connected() as (driver, database), progress("scoring") as update:
        windows = windows_to_score(driver, flt.since, flt.until, all_unscored, clouds, accounts, database)
        if not windows:
            (console if choose_format(fmt) == "table" else err_console).print(
                "nothing to score: every complete day with activity is scored (re-score one with --since DAY)")
            if choose_format(fmt) == "json":
                emit([], "json")
            return
        results = score_windows(
            driver, windows, clouds=clouds, accounts=accounts, checkpoint=checkpoint,
            model_id=model_id_of(path) if path else "history", history_days=history_days, threshold=threshold,
            floor=floor, database=database, device=device, progress=update, nproc=nproc,
        )
    fmt = choose_format(fmt)
    if fmt != "table":
        _print_runs(results, top, None if all_labels else PRINCIPAL_LABELS, fmt)
        return
    for result in results:
        run = result.run
        day = run.window_start.date() if run.window_start else "?"
        print_findings(result.node_scores, top, title=f"{day}: top {top} of {run.nodes_scored:,}",
                       labels=None if all_labels else PRINCIPAL_LABELS)
        console.print(
            f"run {run.run_id} ({day}): {run.nodes_scored:,} entities and {run.edges_scored:,} relationships "
            f"scored against {result.reference_pairs:,} past (entity, day) pairs of "
            f"{run.extra.get('reference_days', '?')} usable day(s) in {run.seconds:.1f} s; "
            f"{run.anomalous_nodes:,} anomalous (calibrated score ≥ {run.threshold})"
        )


RUN_FIELDS = ("run_id", "window_start", "window_end", "model_id", "threshold", "entities_scored",
              "relationships_scored", "anomalous", "reference_pairs", "reference_days", "seconds")
FINDING_FIELDS = ("uid", "label", "score", "raw", "rank", "anomalous", "calibration", "reasons")


def run_documents(results: list[Any], top: int, labels: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """Each scored day as one JSON object: the run and its ``top`` findings (full uids, ISO times)."""
    documents = []
    for result in results:
        run = result.run
        documents.append({
            "run_id": run.run_id, "window_start": iso_utc(run.window_start), "window_end": iso_utc(run.window_end),
            "model_id": run.model_id, "threshold": run.threshold, "entities_scored": run.nodes_scored,
            "relationships_scored": run.edges_scored, "anomalous": run.anomalous_nodes,
            "reference_pairs": result.reference_pairs, "reference_days": run.extra.get("reference_days"),
            "seconds": round(run.seconds, 3),
            "findings": [{"uid": s.uid, "label": s.label, "score": s.score, "raw": s.raw, "rank": s.rank,
                          "anomalous": s.anomalous, "calibration": s.calibration, "reasons": list(s.reasons)}
                         for s in ranked_findings(result.node_scores, top, labels)],
        })
    return documents


def _print_runs(results: list[Any], top: int, labels: tuple[str, ...] | None, fmt: str) -> None:
    documents = run_documents(results, top, labels)
    if fmt != "csv":
        emit(documents, fmt)
        return
    # One line per finding, with its day's run: the run's own "anomalous" count is left to json/jsonl.
    run_columns = ("run_id", "window_start", "window_end", "model_id", "threshold")
    emit(({**{k: d[k] for k in run_columns}, **f} for d in documents for f in d["findings"]), "csv",
         columns=(*run_columns, *FINDING_FIELDS))


EXPLAIN_CSV_COLUMNS = ("uid", "label", "section", "name", "direction", "peer", "value", "rank", "anomalous",
                       "reasons")


@click.command("explain")
@neo4j_options
@click.argument("uid")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Checkpoint (default: latest).")
@click.option("--hops", default=2, show_default=True, help="Neighbourhood used to recompute the embedding.")
@format_option("json/jsonl: one object; csv: one line per scored day, relationship, feature and neighbour.")
def explain(uid: str, model: Path | None, hops: int, fmt: str | None) -> None:
    """Explain why an entity scored high: unusual relationships, pulling neighbours, odd features."""
    from gnnsec.workflow import explain_uid, find_node_query

    fmt = choose_format(fmt)
    with connected() as (driver, database):
        # Fail fast: an unknown uid is said before torch loads or anything is exported.
        found, _, _ = driver.execute_query("WITH $uid AS uid " + find_node_query() + " RETURN count(n) AS n",
                                          uid=uid, database_=database)
        if not found or not found[0]["n"]:
            raise click.ClickException(f"no node with uid {uid!r} in the graph (uids are case-sensitive; "
                                       "`gnnsec findings` lists scored ones)")
        # The default detector needs no trained model: without one (and without --model) the explanation is
        # the entity's scored days and their reasons; a checkpoint adds the graph model's view.
        why, path = None, None
        if model is not None or latest_model_path().exists():
            with work_progress("loading the model") as work:
                checkpoint, path = _load(model)
                work.phase(f"explaining {uid}: exporting its {hops}-hop neighbourhood, encoding, comparing")
                why = explain_uid(driver, checkpoint, uid, database=database, hops=hops)
        records, _, _ = driver.execute_query(
            "MATCH (n) WHERE n.uid = $uid RETURN labels(n)[0] AS label, n.anomaly_score AS s, "
            "n.anomaly_rank AS r, n.anomalous AS a",
            uid=uid, database_=database,
        )
        days, _, _ = driver.execute_query(
            "MATCH (r:ScoringRun)-[s:SCORED]->(n) WHERE n.uid = $uid RETURN r.window_start AS day, s.score AS score, "
            "s.rank AS rank, s.anomalous AS anomalous, s.reasons AS reasons ORDER BY day DESC LIMIT 14",
            uid=uid, database_=database,
        )
    stored = records[0] if records and records[0]["s"] is not None else None
    label = str(records[0]["label"]) if records else "?"
    document = explanation_document(why, uid, label, hops, None if path is None else model_id_of(path), stored,
                                    list(reversed(days)))
    if fmt == "csv":
        emit(explanation_rows(document), "csv", columns=EXPLAIN_CSV_COLUMNS)
    elif fmt != "table":
        emit_one(document, fmt)
    else:
        _print_explanation(document)


def explanation_document(why: Any, uid: str, label: str, hops: int, model_id: str | None, stored: Any,
                         days: list[Any]) -> dict[str, Any]:
    """``gnnsec explain --format json``: one object (docs/findings.md). Without a trained model (``why`` None)
    the graph model's sections are null or empty."""
    return plain({
        "uid": uid, "label": label, "model_id": model_id, "hops": hops,
        "neighbourhood_score": None if why is None else float(why.score),
        "stored_score": None if stored is None else stored["s"],
        "stored_rank": None if stored is None else stored["r"],
        "anomalous": None if stored is None else stored["a"],
        "scored_days": [{"window_start": iso_utc(day["day"]), "score": day["score"], "rank": day["rank"],
                         "anomalous": bool(day["anomalous"]), "reasons": list(day["reasons"] or [])}
                        for day in days],
        "unusual_relationships": [] if why is None else [
            {"type": rel, "direction": direction, "peer": peer, "edge_anomaly": float(a)}
            for rel, direction, peer, a in why.unusual_edges],
        "unusual_features": [] if why is None else [{"feature": name, "z": float(z)}
                                                    for name, z in why.unusual_features],
        "pulling_neighbours": [] if why is None else [{"peer": peer, "pull": float(pull)}
                                                      for peer, pull in why.pulling_neighbours],
    })


def explanation_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The explanation as CSV lines: one per section item (``section`` says which), the uid on each."""
    base = {"uid": document["uid"], "label": document["label"]}
    rows = [{**base, "section": "stored", "value": document["stored_score"], "rank": document["stored_rank"],
             "anomalous": document["anomalous"]},
            {**base, "section": "neighbourhood", "value": document["neighbourhood_score"]}]
    rows += [{**base, "section": "scored_day", "name": d["window_start"], "value": d["score"], "rank": d["rank"],
              "anomalous": d["anomalous"], "reasons": d["reasons"]} for d in document["scored_days"]]
    rows += [{**base, "section": "relationship", "name": e["type"], "direction": e["direction"], "peer": e["peer"],
              "value": e["edge_anomaly"]} for e in document["unusual_relationships"]]
    rows += [{**base, "section": "feature", "name": f["feature"], "value": f["z"]}
             for f in document["unusual_features"]]
    rows += [{**base, "section": "neighbour", "peer": n["peer"], "value": n["pull"]}
             for n in document["pulling_neighbours"]]
    return rows


def _print_explanation(document: dict[str, Any]) -> None:
    uid, label = document["uid"], document["label"]
    shown = uid if len(label) + 1 + len(uid) <= console.width else short_name(uid)
    console.print(Text.assemble((label, "bold"), " ", shown))
    if document["stored_score"] is not None:
        console.print(f"stored score {document['stored_score']:.4f} (rank {document['stored_rank']} in {label}), "
                      f"anomalous: {document['anomalous']}", markup=False)
    if document["scored_days"]:
        print_table("Scored days (against its own history and its label's)", ("day", "score", "rank", "flag", "why"),
                    [[d["window_start"][:10], f"{d['score']:.4f}", str(d["rank"]), "yes" if d["anomalous"] else "no",
                      short_text("; ".join(d["reasons"]))] for d in document["scored_days"]],
                    right=("score", "rank"))
    elif document["stored_score"] is None:
        console.print("not scored yet: `gnnsec score` scores each day against the days before it")
    if document["model_id"] is None:
        console.print("no trained graph model: `gnnsec train` adds its view (DistMult relationships, features, "
                      "neighbours)", style="dim")
        return
    console.print(f"score on its {document['hops']}-hop neighbourhood now: {document['neighbourhood_score']:.4f}")
    print_table("Least plausible relationships (DistMult)", ("relationship", "direction", "peer", "anomaly"),
                [[e["type"], e["direction"], short_name(e["peer"]), f"{e['edge_anomaly']:.3f}"]
                 for e in document["unusual_relationships"]], right=("anomaly",))
    print_table(f"Features furthest from {label} peers", ("feature", "z"),
                [[f["feature"], f"{f['z']:+.2f}"] for f in document["unusual_features"]], right=("z",))
    if document["pulling_neighbours"]:
        console.print("neighbours pulling it away from normal: " + ", ".join(
            f"{short_name(n['peer'])} ({n['pull']:.2f})" for n in document["pulling_neighbours"]), markup=False)


@click.command("feedback")
@neo4j_options
@click.option("--benign", "benign", multiple=True, metavar="UID", help="Confirmed benign (repeatable).")
@click.option("--malicious", "malicious", multiple=True, metavar="UID", help="Confirmed malicious (repeatable).")
@click.option("--note", default=None, help="A short note stored with the verdict.")
@click.option("--analyst", envvar="GNNSEC_ANALYST", show_envvar=True, default=None,
              help="Who gives the verdict, stored with it (default: your login name).")
def feedback(benign: tuple[str, ...], malicious: tuple[str, ...], note: str | None, analyst: str | None) -> None:
    """Record an analyst verdict. Benign verdicts join the reference set at the next `gnnsec score`;
    `gnnsec train --adapt MODEL` fine-tunes the adapters on new benign data."""
    from gnnsec.workflow import record_feedback

    if not benign and not malicious:
        raise click.UsageError("give at least one --benign or --malicious UID")
    both = sorted(set(benign) & set(malicious))
    if both:
        raise click.UsageError(f"{', '.join(both)}: given as both --benign and --malicious; say which it is")
    analyst = analyst or getpass.getuser()
    missing: list[str] = []
    with connected() as (driver, database):
        if benign:
            missing += record_feedback(driver, benign, "benign", analyst, note=note, database=database)
        if malicious:
            missing += record_feedback(driver, malicious, "malicious", analyst, note=note, database=database)
    recorded = len(benign) + len(malicious) - len(missing)
    console.print(f"recorded {recorded} verdict(s) by {analyst}")
    if missing:
        raise click.ClickException(f"no node with uid: {', '.join(missing)}")
