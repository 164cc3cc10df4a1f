"""LogQL for one app's lines: which streams belong to an app, and how severities map to Loki's level words.

The label names come from the ``[loki]`` table of the TOML config file (all optional; read by server/config.py)::

    [loki]
    workspace_label = "workspace_id"     # stream label holding the workspace id
    app_label = "app_id"                 # stream label holding the app id
    level_label = "level"                # stream label set by the log shipper
    level_fallback_label = "detected_level"  # Loki 3's structured metadata, used when level_label is empty

Severity mapping (case-insensitive; anything else, including ``unknown`` and a missing level, is INFO):

    DEBUG     trace, debug, dbg, dbug, trc, verbose
    INFO      info, inf, information, notice, unknown, anything unlisted
    WARNING   warn, warning, wrn
    ERROR     error, err, eror, erro
    CRITICAL  critical, crit, fatal, panic, emerg, emergency, alert
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from dooor.monitoring.v1 import monitoring_pb2 as pb

Severity = pb.Severity.ValueType

LEVEL_WORDS: dict[Severity, tuple[str, ...]] = {
    pb.SEVERITY_DEBUG: ("trace", "debug", "dbg", "dbug", "trc", "verbose"),
    pb.SEVERITY_WARNING: ("warn", "warning", "wrn"),
    pb.SEVERITY_ERROR: ("error", "err", "eror", "erro"),
    pb.SEVERITY_CRITICAL: ("critical", "crit", "fatal", "panic", "emerg", "emergency", "alert"),
}
_BY_WORD = {word: severity for severity, words in LEVEL_WORDS.items() for word in words}


def severity_of(level: str) -> Severity:
    """The documented severity of a Loki level word; unknown words (and "") are INFO."""
    return _BY_WORD.get(level.lower(), pb.SEVERITY_INFO)


def quote(value: str) -> str:
    """A LogQL double-quoted string (Go rules). Non-ASCII stays UTF-8; control characters are escaped."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


@dataclasses.dataclass(frozen=True)
class LabelScheme:
    """Which stream labels hold an entry's workspace, app and level."""

    workspace_label: str = "workspace_id"
    app_label: str = "app_id"
    level_label: str = "level"
    level_fallback_label: str = "detected_level"

    def selector(self, workspace_id: str, app_id: str, severity: Severity = pb.SEVERITY_UNSPECIFIED) -> str:
        """The LogQL query for one app's lines, optionally of exactly one severity."""
        return self.streams(workspace_id, app_id) + self.severity_filter(severity)

    def streams(self, workspace_id: str, app_id: str) -> str:
        """The stream selector of one app. The ids were validated (server.validation) and are quoted anyway."""
        return f"{{{self.workspace_label}={quote(workspace_id)}, {self.app_label}={quote(app_id)}}}"

    def severity_filter(
        self, severity: Severity = pb.SEVERITY_UNSPECIFIED, min_severity: Severity = pb.SEVERITY_UNSPECIFIED
    ) -> str:
        """The label filter stage keeping exactly ``severity``, or else ``min_severity`` and worse; "" for all.

        It reads the level label, and the fallback label only where the level label is empty, like
        :meth:`severity`. INFO is every word that is not one of the others (unknown words included).
        """
        if severity:
            kept = {severity}
        elif min_severity > pb.SEVERITY_DEBUG:
            kept = {s for s in pb.Severity.values() if s >= min_severity}
        else:
            return ""
        primary, fallback = self.level_label, self.level_fallback_label
        if pb.SEVERITY_INFO in kept:
            dropped = [w for s, words in LEVEL_WORDS.items() if s not in kept for w in words]
            others = quote("(?i)(" + "|".join(dropped) + ")")
            return f' | ({primary}!="" and {primary}!~{others}) or ({primary}="" and {fallback}!~{others})'
        words = quote("(?i)(" + "|".join(w for s in sorted(kept) for w in LEVEL_WORDS[s]) + ")")
        return f' | {primary}=~{words} or ({primary}="" and {fallback}=~{words})'

    def severity(self, labels: Mapping[str, str]) -> Severity:
        return severity_of(labels.get(self.level_label) or labels.get(self.level_fallback_label) or "")
