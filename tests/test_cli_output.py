"""Small output helpers of the CLI: short names for tables, progress that is never silent when piped."""

from __future__ import annotations

import pytest

from gnnsec.cli.common import display_name, progress


@pytest.mark.parametrize(("uid", "short"), [
    ("arn:aws:iam::123456789012:user/alice", "user/alice@123456789012"),
    ("arn:aws:ec2:us-east-1:340054170026:instance/i-6de7", "instance/i-6de7@340054170026"),
    ("arn:aws:s3:::corp-prod-raw", "corp-prod-raw"),
    ("//storage.googleapis.com/projects/_/buckets/corp-analytics-ml-models", "…/buckets/corp-analytics-ml-models"),
    ("ip:203.0.113.9", "ip:203.0.113.9"),
])
def test_display_names_are_short_and_keep_what_identifies(uid: str, short: str) -> None:
    assert display_name(uid) == short


def test_progress_prints_lines_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("scoring") as update:
        update("too soon: throttled")
    err = capsys.readouterr().err
    assert "] scoring" in err and "throttled" not in err


def test_contradictory_feedback_is_refused_before_anything_is_written() -> None:
    from click.testing import CliRunner

    from gnnsec.cli.main import cli

    result = CliRunner().invoke(cli, ["feedback", "--benign", "u1", "--malicious", "u1", "--benign", "u2"],
                                env={"NEO4J_URI": "bolt://127.0.0.1:1"})  # never reached
    assert result.exit_code == 2
    assert "u1: given as both --benign and --malicious" in result.output


def test_checkpoints_and_quarantine_reports_are_private(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both hold the estate's uids or record excerpts: 0600 files in 0700 directories of the state dir."""
    import stat

    from gnnsec.config import ensure_private_dir, models_dir, open_private

    monkeypatch.setenv("GNNSEC_HOME", str(tmp_path / "state"))
    monkeypatch.setattr("os.umask", lambda mask: 0)  # not relied upon: modes are set explicitly
    target = ensure_private_dir(models_dir())
    with open_private(target / "model.pt") as handle:
        handle.write(b"x")
    assert stat.S_IMODE((target / "model.pt").stat().st_mode) == 0o600
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    (tmp_path / "elsewhere").mkdir(mode=0o755)
    outside = ensure_private_dir(tmp_path / "elsewhere")  # a user's own --out directory keeps its mode
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755


def test_main_maps_every_outcome_to_one_exit_code_and_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    import neo4j.exceptions

    from gnnsec.cli.main import _describe, main

    assert main(["--version"]) == 0
    assert main(["query", "no-such-hunt"]) == 1
    assert main(["ingest", "cloudtral", "x"]) == 2
    err = capsys.readouterr().err
    assert "no hunt named 'no-such-hunt'" in err and "Traceback" not in err
    described = _describe(neo4j.exceptions.ServiceUnavailable("connection lost"))
    assert "gnnsec db status" in described and "wrote nothing" in described
    assert "--traceback" in _describe(RecursionError("deep"))


def test_query_list_shows_parameter_defaults_in_full_at_80_columns() -> None:
    from click.testing import CliRunner

    from gnnsec.cli.main import cli

    listed = CliRunner().invoke(cli, ["query", "--list"], terminal_width=80)
    assert "…" not in listed.output and "min_edge_anomaly" in listed.output


def test_user_errors_are_one_line_and_traceback_shows_where_they_and_bugs_came_from(
        tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A GnnsecError from deep code is `Error: <message>`, exit 1; with --traceback (or GNNSEC_DEBUG=1) the
    chain down to the raising frame is printed too. A bug is never dressed as a user error."""
    from gnnsec.cli.main import main
    from gnnsec.errors import InputError
    from gnnsec.evaluate import runner

    estate = tmp_path / "estate"
    (estate / "native").mkdir(parents=True)
    (estate / "native" / "g.jsonl").write_text(
        '{"kind": "node", "label": "User", "uid": "u:1", "props": {"name": "one"}}\n')
    (estate / "labels").mkdir()
    (estate / "labels" / "entities.csv").write_text("uid,label\nu:1,User\n")
    args = ["eval", "--data", str(estate), "--split", "entity", "--models", "iforest", "--out", str(tmp_path / "r")]

    assert main([*args, "--folds", "1"]) == 1
    err = capsys.readouterr().err
    assert "Error: --folds must be at least 2" in err and "Traceback" not in err
    assert main([*args, "--folds", "3"]) == 1
    assert "Error: --folds 3 needs at least 3 nodes; the graph has 1" in capsys.readouterr().err
    monkeypatch.setenv("GNNSEC_DEBUG", "1")
    assert main([*args, "--folds", "1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "entity_folds" in err and "Error: --folds must be at least 2" in err
    monkeypatch.delenv("GNNSEC_DEBUG")

    def broken(*_: object, **__: object) -> None:
        raise ZeroDivisionError("a bug deep in the split")

    monkeypatch.setattr(runner, "entity_folds", broken)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "unexpected ZeroDivisionError: a bug deep in the split" in err and "--traceback" in err
    assert "Traceback" not in err
    with pytest.raises(ZeroDivisionError):
        main([*args, "--traceback"])
    assert not isinstance(ZeroDivisionError(), InputError)
