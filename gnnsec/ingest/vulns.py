"""Trivy and Grype JSON reports → CVE nodes and HAS_VULN from the scanned workload.

One HAS_VULN per (artifact, vulnerability id), whatever the number of packages it affects:
the packages go into the ``packages`` list (``name@installed-version``) and the fixes into
``fixed_version``, so a re-scan merges onto the same relationship.  A container image becomes
a Container (uids.container_image, ``kind="image"``); a host, VM or root filesystem becomes a
VM named ``host:<artifact name>`` (see :func:`host_uid`), since a scan report does not carry
the cloud id of the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from gnnsec.ingest import uids
from gnnsec.ingest._common import as_str, clean_props, get_path
from gnnsec.ingest.base import AdapterError, BadRecord, Edge, Node, Record, head
from gnnsec.ingest.jsonio import load_json, parse_time
from gnnsec.ingest.validation import safe_excerpt

IMAGE_TYPES = frozenset({"container_image", "image", "docker", "oci", "registry", "podman"})
HOST_TYPES = frozenset({"vm", "filesystem", "rootfs", "directory", "dir", "file", "host"})
SEVERITIES = ("UNKNOWN", "NEGLIGIBLE", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def host_uid(name: str) -> str:
    """A scanned host's uid: a cloud instance id that is already a uid (an EC2 instance ARN, an Azure
    or GCP VM resource id) is used as it is, so the CVEs land on the inventory VM; any other name
    becomes ``host:<name>``."""
    stripped = name.strip()
    if stripped.startswith("arn:aws:ec2:") and ":instance/" in stripped:
        return stripped
    if stripped.lower().startswith("/subscriptions/") and "/virtualmachines/" in stripped.lower():
        return uids.azure_resource(stripped)
    if stripped.startswith("//compute.googleapis.com/"):
        return uids.gcp_resource(stripped)
    return f"host:{stripped}"


@dataclass
class _Finding:
    """Everything one report says about one vulnerability id in one artifact."""

    severity: str = "UNKNOWN"
    cvss: float | None = None
    title: str | None = None
    packages: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)

    def add(self, severity: str | None, cvss: float | None, title: str | None, package: str, fixed: str | None) -> None:
        severity = (severity or "UNKNOWN").upper()
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else 0
        if rank > SEVERITIES.index(self.severity):
            self.severity = severity
        if cvss is not None and (self.cvss is None or cvss > self.cvss):
            self.cvss = cvss
        self.title = self.title or title
        if package not in self.packages:
            self.packages.append(package)
        if fixed and fixed not in self.fixed:
            self.fixed.append(fixed)


class VulnerabilityReportAdapter:
    """Trivy (SchemaVersion 2) and Grype JSON reports."""

    name: ClassVar[str] = "vulns"
    description: ClassVar[str] = "Trivy JSON (SchemaVersion 2) and Grype JSON vulnerability reports"

    def sniff(self, path: Path) -> bool:
        text = head(path)
        if not text.lstrip().startswith("{"):
            return False
        trivy = '"SchemaVersion"' in text and ('"ArtifactName"' in text or '"Results"' in text)
        grype = '"matches"' in text and ('"vulnerability"' in text or '"descriptor"' in text)
        return trivy or grype

    def read(self, path: Path) -> Iterator[Record]:
        report = load_json(path)
        if not isinstance(report, Mapping):
            raise AdapterError(path, "expected a JSON object (a Trivy or Grype report)")
        if "SchemaVersion" in report or "Results" in report:
            yield from _trivy(report)
        elif "matches" in report:
            yield from _grype(report)
        else:
            raise AdapterError(path, "neither a Trivy report (SchemaVersion, Results) nor a Grype report (matches)")


def _artifact(kind: str, name: str, seen: datetime | None, **extra: Any) -> Node | BadRecord:
    kind = kind.lower()
    if kind in IMAGE_TYPES:
        props = clean_props(name=name, kind="image", **extra)
        return Node("Container", uids.container_image(name), props, seen)
    if kind in HOST_TYPES:
        return Node("VM", host_uid(name), clean_props(name=name, kind="host", **extra), seen)
    if kind == "repository":
        return Node("Container", uids.container_image(name), clean_props(name=name, kind="repository", **extra), seen)
    return BadRecord("artifact", f"unsupported artifact type {kind!r} for {name!r}")


def _records(artifact: Node, findings: Mapping[str, _Finding]) -> Iterator[Record]:
    yield artifact
    for vuln_id, finding in findings.items():
        cve = Node(
            "CVE",
            uids.cve(vuln_id),
            clean_props(
                name=vuln_id.upper(),
                severity=finding.severity,
                cvss=finding.cvss,
                title=finding.title,
                fixed_available=bool(finding.fixed),
            ),
        )
        yield cve
        props = clean_props(packages=list(finding.packages), fixed_version=", ".join(finding.fixed) or None)
        yield Edge("HAS_VULN", artifact.ref, cve.ref, props)


_FindingsReader = Callable[[list[Any], dict[str, _Finding]], Iterator[BadRecord]]
"""Folds a report's entries into findings by vulnerability id, yielding the entries it cannot read."""


def _report_records(
    artifact: Node | BadRecord, report: Mapping[str, Any], key: str, read: _FindingsReader
) -> Iterator[Record]:
    """What Trivy and Grype reports share: the artifact, the list of entries under ``key`` (a bad record when
    it is not a list), then the artifact's CVEs once every entry is folded in."""
    if isinstance(artifact, BadRecord):
        yield artifact
        return
    entries = report.get(key) or []
    if not isinstance(entries, list):
        yield BadRecord(key, f"'{key}' must be a list, found {type(entries).__name__}")
        return
    findings: dict[str, _Finding] = {}
    yield from read(entries, findings)
    yield from _records(artifact, findings)


def _seen(value: Any) -> datetime | None:
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None


def _trivy(report: Mapping[str, Any]) -> Iterator[Record]:
    name = as_str(report.get("ArtifactName"))
    if name is None:
        yield BadRecord("ArtifactName", "a Trivy report without ArtifactName")
        return
    artifact = _artifact(
        as_str(report.get("ArtifactType")) or "container_image",
        name,
        _seen(report.get("CreatedAt")),
        image_id=as_str(get_path(report, "Metadata", "ImageID")),
        os=as_str(get_path(report, "Metadata", "OS", "Family")),
    )
    yield from _report_records(artifact, report, "Results", _trivy_findings)


def _trivy_findings(results: list[Any], findings: dict[str, _Finding]) -> Iterator[BadRecord]:
    for r_index, result in enumerate(results):
        if not isinstance(result, Mapping):
            yield BadRecord(f"Results[{r_index}]", "expected a JSON object")
            continue
        vulns = result.get("Vulnerabilities") or []
        if not isinstance(vulns, list):
            yield BadRecord(f"Results[{r_index}].Vulnerabilities",
                            f"'Vulnerabilities' must be a list, found {type(vulns).__name__}")
            continue
        for v_index, vuln in enumerate(vulns):
            where = f"Results[{r_index}].Vulnerabilities[{v_index}]"
            vuln_id = as_str(vuln.get("VulnerabilityID")) if isinstance(vuln, Mapping) else None
            package = as_str(vuln.get("PkgName")) if isinstance(vuln, Mapping) else None
            if vuln_id is None or package is None:
                yield BadRecord(where, "a vulnerability without VulnerabilityID or PkgName", safe_excerpt(vuln, 200))
                continue
            cvss = vuln.get("CVSS") or {}
            if not isinstance(cvss, Mapping):
                yield BadRecord(where, f"'CVSS' must be an object of scores by source, found {type(cvss).__name__}",
                                safe_excerpt(vuln, 200))
                continue
            scores = [
                float(source["V3Score"])
                for source in cvss.values()
                if isinstance(source, Mapping) and _is_score(source.get("V3Score"))
            ]
            title = as_str(vuln.get("Title")) or (as_str(vuln.get("Description")) or "")[:200] or None
            installed = as_str(vuln.get("InstalledVersion")) or "unknown"
            findings.setdefault(vuln_id.upper(), _Finding()).add(
                as_str(vuln.get("Severity")),
                max(scores) if scores else None,
                title,
                f"{package}@{installed}",
                as_str(vuln.get("FixedVersion")),
            )


def _is_score(value: Any) -> bool:
    """A CVSS score as a number (not a bool, and finite: ``1e999`` would be infinity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 10


def _grype_cvss(vuln: Mapping[str, Any]) -> list[float]:
    """The CVSS v3 base scores of a Grype vulnerability; ``ValueError`` when ``cvss`` is not a list."""
    entries = vuln.get("cvss") or []
    if not isinstance(entries, list):
        raise ValueError(f"'cvss' must be a list of scores, found {type(entries).__name__}")
    scores = []
    for entry in entries:
        if isinstance(entry, Mapping) and str(entry.get("version", "")).startswith("3"):
            score = get_path(entry, "metrics", "baseScore")
            if _is_score(score):
                scores.append(float(score))
    return scores


def _grype(report: Mapping[str, Any]) -> Iterator[Record]:
    target = get_path(report, "source", "target")
    name = as_str(target) if isinstance(target, str) else as_str(get_path(target, "userInput"))
    if name is None:
        yield BadRecord("source.target", "a Grype report without source.target.userInput")
        return
    artifact = _artifact(
        as_str(get_path(report, "source", "type")) or "image",
        name,
        _seen(get_path(report, "descriptor", "timestamp")),
        image_id=as_str(get_path(target, "imageID")) if isinstance(target, Mapping) else None,
        os=as_str(get_path(report, "distro", "name")),
    )
    yield from _report_records(artifact, report, "matches", _grype_findings)


def _grype_findings(matches: list[Any], findings: dict[str, _Finding]) -> Iterator[BadRecord]:
    for index, match in enumerate(matches):
        where = f"matches[{index}]"
        vuln = get_path(match, "vulnerability")
        package = as_str(get_path(match, "artifact", "name"))
        if not isinstance(vuln, Mapping) or as_str(vuln.get("id")) is None or package is None:
            yield BadRecord(where, "a match without vulnerability.id or artifact.name", safe_excerpt(match, 200))
            continue
        vuln_id = str(vuln["id"]).strip()
        related_list = match.get("relatedVulnerabilities") or []
        fix_versions = get_path(vuln, "fix", "versions") or []
        try:
            if not isinstance(related_list, list) or not isinstance(fix_versions, list):
                raise ValueError("'relatedVulnerabilities' and 'fix.versions' must be lists")
            scores = _grype_cvss(vuln)
            for related in related_list:
                if isinstance(related, Mapping):
                    scores += _grype_cvss(related)
        except ValueError as exc:
            yield BadRecord(where, str(exc), safe_excerpt(match, 200))
            continue
        fixes = [v for v in fix_versions if isinstance(v, str)]
        version = as_str(get_path(match, "artifact", "version")) or "unknown"
        findings.setdefault(vuln_id.upper(), _Finding()).add(
            as_str(vuln.get("severity")),
            max(scores) if scores else None,
            (as_str(vuln.get("description")) or "")[:200] or None,
            f"{package}@{version}",
            ", ".join(fixes) or None,
        )
