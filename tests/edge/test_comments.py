"""edge.comments: the proto's leading comments by full name, from a descriptor set with source info."""

from __future__ import annotations

import pathlib

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from dooor.monitoring.v1 import monitoring_pb2 as pb
from edge import comments

PROTO = """\
syntax = "proto3";
package notes.v1;

// Keeps notes.
service Notes {
  // Returns one [Note][notes.v1.Note].
  rpc GetNote(Note) returns (Note);
}

// A note.
//
// Second paragraph.
message Note {
  // The note's text.
  string text = 1;
  int32 undocumented = 2;  // a trailing comment is not a description
  Kind kind = 3;

  // A part of a note.
  message Part {
    // Where the part starts.
    int32 offset = 1;
  }

  // What the note is.
  enum Kind {
    // Not said.
    KIND_UNSPECIFIED = 0;
    // A reminder.
    KIND_REMINDER = 1;
  }
}

// Top-level colours.
enum Colour {
  COLOUR_UNSPECIFIED = 0;
  // Red, as in stop.
  COLOUR_RED = 1;
}
"""


def _index(tmp_path: pathlib.Path) -> dict[str, str]:
    (tmp_path / "notes.proto").write_text(PROTO)
    out = tmp_path / "notes.binpb"
    args = ["protoc", f"-I{tmp_path}", "--include_source_info", f"--descriptor_set_out={out}", "notes.proto"]
    assert protoc.main(args) == 0
    return comments.index(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file)


def test_every_kind_of_element_is_found_by_full_name(tmp_path: pathlib.Path) -> None:
    assert _index(tmp_path) == {
        "notes.v1.Notes": "Keeps notes.",
        "notes.v1.Notes.GetNote": "Returns one Note.",
        "notes.v1.Note": "A note.\n\nSecond paragraph.",
        "notes.v1.Note.text": "The note's text.",
        "notes.v1.Note.Part": "A part of a note.",
        "notes.v1.Note.Part.offset": "Where the part starts.",
        "notes.v1.Note.Kind": "What the note is.",
        "notes.v1.Note.Kind.KIND_UNSPECIFIED": "Not said.",
        "notes.v1.Note.Kind.KIND_REMINDER": "A reminder.",
        "notes.v1.Colour": "Top-level colours.",
        "notes.v1.Colour.COLOUR_RED": "Red, as in stop.",
    }


def test_the_generated_set_documents_the_api() -> None:
    # gen/dooor/protos.binpb, written by `make gen` beside the modules.
    service = pb.DESCRIPTOR.services_by_name["MonitoringService"]
    assert comments.of(service) == "Reads the metrics, health, logs and alerts of a workspace's apps."
    assert comments.of(pb.ListAppLogsRequest.DESCRIPTOR) == "Request message for MonitoringService.ListAppLogs."
    assert comments.of(pb.Period.DESCRIPTOR.values_by_name["PERIOD_1H"]) == "The last hour, one point per minute."
    assert comments.of(pb.Period.DESCRIPTOR.values_by_name["PERIOD_UNSPECIFIED"]) == "Not specified: `24h`."
    assert comments.name(pb.Period.DESCRIPTOR.values_by_name["PERIOD_1H"]) == "dooor.monitoring.v1.Period.PERIOD_1H"
