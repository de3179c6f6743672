"""Files an attacker or a broken export can hand us: each is an error naming the file, never a silent skip."""

from __future__ import annotations

import gzip
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from gnnsec.ingest import ADAPTERS
from gnnsec.ingest.pipeline import IngestError, discover, stage

FIXTURE = Path(__file__).parent / "fixtures" / "aws" / "cloudtrail" / "stratus-red-team" / (
    "aws.execution.ec2-user-data.json")


def _bad_utf8(tmp_path: Path, offset: int) -> Path:
    data = bytearray(FIXTURE.read_bytes())
    data[offset] = 0xFF
    path = tmp_path / "events.json"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("offset", [100, 9000])
def test_undecodable_bytes_anywhere_are_an_error_for_auto_and_for_a_named_source(tmp_path: Path, offset: int) -> None:
    path = _bad_utf8(tmp_path, offset)
    if offset < 8192:  # sniffing sees it: auto cannot recognise the file, and says why
        with pytest.raises(IngestError, match="not UTF-8 text"):
            discover([tmp_path])
    items, _ = discover([path], "cloudtrail")
    with pytest.raises(IngestError, match=r"events\.json.*(not UTF-8|cannot read)"):
        stage(items[0], timedelta(days=1))


def test_plain_json_named_gz_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "events.json.gz"
    shutil.copyfile(FIXTURE, path)
    with pytest.raises(IngestError, match="not gzip-compressed"):
        discover([tmp_path])
    items, _ = discover([path], "cloudtrail")
    with pytest.raises(IngestError, match="not gzip-compressed"):
        stage(items[0], timedelta(days=1))


def test_a_corrupt_gzip_body_is_an_error_not_a_zlib_traceback(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(FIXTURE.read_bytes()))
    packed[len(packed) // 2] ^= 0xFF
    path = tmp_path / "events.json.gz"
    path.write_bytes(bytes(packed))
    items, _ = discover([path], "cloudtrail")
    with pytest.raises(IngestError, match=r"events\.json\.gz"):
        stage(items[0], timedelta(days=1))


@pytest.mark.timeout(20)
def test_a_fifo_in_a_directory_is_refused_without_blocking(tmp_path: Path) -> None:
    shutil.copyfile(FIXTURE, tmp_path / "events.json")
    os.mkfifo(tmp_path / "pipe.json")
    with pytest.raises(IngestError, match="not a regular file"):
        discover([tmp_path])
    with pytest.raises(IngestError, match="not a regular file"):
        discover([tmp_path / "pipe.json"], "cloudtrail")


def test_readable_text_no_adapter_knows_is_still_listed_as_unrecognised(tmp_path: Path) -> None:
    shutil.copyfile(FIXTURE, tmp_path / "events.json")
    (tmp_path / "settings.cfg").write_text("hello\n", encoding="utf-8")
    items, unrecognised = discover([tmp_path])
    assert [i.path.name for i in items] == ["events.json"] and unrecognised == [str(tmp_path / "settings.cfg")]


@pytest.mark.parametrize("source", sorted(ADAPTERS))
@pytest.mark.parametrize("content", [b"", b"\n  \n\t\n"], ids=["no bytes", "whitespace"])
def test_an_empty_file_is_zero_records_in_every_adapter_and_the_summary_names_it(
        tmp_path: Path, source: str, content: bytes) -> None:
    """Every adapter the same way (it was an error in vulns and 0 records elsewhere): nothing staged, no error,
    and the summary lists the file among those that held no records."""
    from click.testing import CliRunner

    from gnnsec.cli.main import cli

    path = tmp_path / "export.json"
    path.write_bytes(content)
    items, unclaimed = discover([path], source)
    assert [item.path for item in items] == [path] and not unclaimed
    staging, skipped = stage(items[0], timedelta(days=1))
    assert (staging.records, len(staging.nodes), len(staging.edges), sum(skipped.values())) == (0, 0, 0, 0)
    result = CliRunner().invoke(cli, ["ingest", source, str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1 file(s) held no records" in result.output


def test_a_k8s_export_without_objects_creates_no_phantom_cluster_and_wrong_items_is_an_error(tmp_path: Path) -> None:
    """Was: exit 0 and a Cluster named after the file, for an empty list or ``items: {}``."""
    empty = tmp_path / "empty-list.json"
    empty.write_text('{"apiVersion": "v1", "kind": "List", "items": []}')
    items, _ = discover([empty], "k8s")
    staging, _ = stage(items[0], timedelta(days=1))
    assert not staging.nodes
    wrong = tmp_path / "items-map.json"
    wrong.write_text('{"apiVersion": "v1", "kind": "List", "items": {}}')
    items, _ = discover([wrong], "k8s")
    with pytest.raises(IngestError, match="'items' must be a JSON array"):
        stage(items[0], timedelta(days=1))
