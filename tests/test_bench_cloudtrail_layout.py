"""The ingest benchmark's ``--layout cloudtrail-5min`` writes what AWS delivers, and gnnsec reads all of it.

No Neo4j: a day of a small budget is generated once per module and read with the CloudTrail adapter, so a
change to the generator that gnnsec would reject (or that loses the shape the benchmark claims) fails here.
"""

from __future__ import annotations

import gzip
import re
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from benchmarks.cloudtrail_layout import (
    ACCOUNT,
    HOME_REGIONS,
    IDLE_PER_FILE,
    REGIONS,
    SLOTS_PER_DAY,
    Layout,
    cell_means,
    write_cloudtrail_5min,
)
from gnnsec.ingest.pipeline import discover, stage

AWS_NAME = re.compile(
    r"AWSLogs/(?P<account>\d{12})/CloudTrail/(?P<region>[a-z]{2}-[a-z]+-\d)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
    r"(?P=account)_CloudTrail_(?P=region)_(?P<stamp>(?P=y)(?P=m)(?P=d)T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz"
)
EVENTS, DAYS = 6_000, 1


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return write_cloudtrail_5min(tmp_path_factory.mktemp("trail"), EVENTS, seed=11, days=DAYS)


def _records(path: Path) -> list[dict]:
    return orjson.loads(gzip.decompress(path.read_bytes()))["Records"]


def test_file_names_and_folders_follow_aws(layout: Layout) -> None:
    assert sum(layout.events_per_file) == EVENTS == layout.events
    for path in layout.paths:
        match = AWS_NAME.fullmatch(path.relative_to(layout.root).as_posix())
        assert match, path
        delivered = datetime.strptime(match["stamp"], "%Y%m%dT%H%MZ")
        assert match["account"] == ACCOUNT and match["region"] in REGIONS and delivered.minute % 5 == 0
        for record in _records(path):  # a file holds its region's events of the 5 minutes before delivery
            assert record["awsRegion"] == match["region"]
            when = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
            assert delivered - timedelta(minutes=5) <= when < delivered


def test_gnnsec_claims_and_stages_every_file_without_a_bad_record(layout: Layout) -> None:
    items, unclaimed = discover([layout.root / "AWSLogs"], "auto")
    assert not unclaimed
    assert [item.path for item in items] == layout.paths  # the order `gnnsec ingest` walks them in
    assert {item.source for item in items} == {"cloudtrail"}
    edges = 0
    for item in items:
        staging, skipped = stage(item, timedelta(days=1))  # raises IngestError on a bad record
        assert not skipped
        edges += len(staging.edges)
    assert edges > EVENTS / 2  # most events become activity (AWS services' own calls do not)


def test_records_look_like_cloudtrail(layout: Layout) -> None:
    records = [record for path in layout.paths for record in _records(path)]
    assert len({record["eventID"] for record in records}) == len(records)
    types = {record["userIdentity"]["type"] for record in records}
    assert {"AssumedRole", "IAMUser", "AWSService"} <= types
    assert {record["eventVersion"] for record in records} <= {"1.08", "1.09", "1.10"}
    failed = sum(1 for record in records if "errorCode" in record)
    assert 0.005 < failed / len(records) < 0.06
    with_params = sum(1 for record in records if record["requestParameters"])
    assert 0.3 < with_params / len(records) < 0.95  # sparse, as in real trails
    for record in records:
        assert record["recipientAccountId"] == ACCOUNT and isinstance(record["readOnly"], bool)
        assert record["eventSource"].endswith(".amazonaws.com") and record["sourceIPAddress"] and record["userAgent"]


def test_same_seed_same_bytes_other_seed_other_files(tmp_path: Path) -> None:
    first, again, other = (write_cloudtrail_5min(tmp_path / name, 1_500, seed=seed, rates_of=43_000, days=DAYS)
                           for name, seed in (("first", 11), ("again", 11), ("other", 12)))
    names = [path.relative_to(first.root) for path in first.paths]
    assert [path.relative_to(again.root) for path in again.paths] == names
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first.paths, again.paths, strict=True))
    assert [path.relative_to(other.root) for path in other.paths] != names


def test_two_home_regions_carry_the_work_and_the_rest_idle(layout: Layout) -> None:
    home = sum(layout.region_events[region] for region in HOME_REGIONS)
    assert home / EVENTS > 0.55
    assert max(layout.region_events, key=layout.region_events.__getitem__) == "us-east-1"
    for region in REGIONS:
        if region not in HOME_REGIONS:
            assert layout.region_events[region] / max(1, layout.region_files[region]) < 3
            assert layout.region_events[region] < layout.region_events["eu-west-1"] / 2
    us = layout.hour_events["us-east-1"]
    assert max(us[14:22]) > 2 * min(us[5:10])  # business hours in New York against its small hours


def test_week_rates_idle_handful_busy_home_weekdays() -> None:
    means, people = cell_means(300_000)
    assert means.shape == (len(REGIONS), 7 * SLOTS_PER_DAY) and round(means.sum()) == 300_000
    idle = [i for i, region in enumerate(REGIONS) if region not in HOME_REGIONS]
    assert means[idle].mean() == pytest.approx(IDLE_PER_FILE)
    us = REGIONS.index("us-east-1")
    assert means[us].mean() > 20 * means[idle].mean()
    monday_noon, sunday_noon = 17 * 12, (6 * 24 + 17) * 12  # 12:00 in New York
    assert people[us, monday_noon] > 0.5 and people[us, sunday_noon] < 0.3 and people[idle].max() == 0


def test_first_ingest_slice_is_the_start_of_the_same_week(tmp_path: Path) -> None:
    small = write_cloudtrail_5min(tmp_path, 3_000, seed=7, rates_of=300_000)
    assert small.events == 3_000 and len(small.region_files) == len(REGIONS)
    stamps = {AWS_NAME.fullmatch(p.relative_to(tmp_path).as_posix())["stamp"] for p in small.paths}  # type: ignore[index]
    assert min(stamps) == "20260302T0005Z" and max(stamps) < "20260302T0400Z"
