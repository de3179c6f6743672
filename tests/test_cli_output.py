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
