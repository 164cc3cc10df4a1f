"""server/states.py mirrors the proto enums: the same values, spelled as the documented JSON."""

from __future__ import annotations

import enum

import pytest
from google.protobuf.descriptor import EnumDescriptor

from dooor.monitoring.v1 import monitoring_pb2 as pb
from server import validation
from server.states import (
    AlertSeverity,
    AlertType,
    ChannelKind,
    DeliveryStatus,
    HealthStatus,
    NotificationEvent,
    OperationKind,
    OperationStatus,
    PayloadFormat,
    ResolvedBy,
    SilenceState,
)


@pytest.mark.parametrize(
    ("state", "proto"),
    [
        (HealthStatus, pb.HealthStatus.DESCRIPTOR),
        (AlertType, pb.AlertType.DESCRIPTOR),
        (AlertSeverity, pb.AlertSeverity.DESCRIPTOR),
        (OperationStatus, pb.OperationStatus.DESCRIPTOR),
        (ResolvedBy, pb.AlertResolution.DESCRIPTOR),
        (SilenceState, pb.SilenceState.DESCRIPTOR),
        (ChannelKind, pb.ChannelKind.DESCRIPTOR),
        (PayloadFormat, pb.PayloadFormat.DESCRIPTOR),
        (NotificationEvent, pb.NotificationEvent.DESCRIPTOR),
        (DeliveryStatus, pb.DeliveryStatus.DESCRIPTOR),
    ],
)
def test_each_state_is_its_proto_enum_in_documented_json(state: type[enum.StrEnum], proto: EnumDescriptor) -> None:
    assert [member.value for member in state] == validation.json_values(proto)


def test_operation_kinds_are_the_overviews_activity_types() -> None:
    activity = validation.json_values(pb.ActivityType.DESCRIPTOR)
    assert [kind.value for kind in OperationKind] == [t for t in activity if t != "alert"]


def test_records_turn_column_strings_into_states() -> None:
    from server.store.records import Alert

    alert = Alert("alr_1", "ws", "app", "high_cpu", "warning", "m", 1, None, None)  # type: ignore[arg-type]
    assert alert.type is AlertType.HIGH_CPU and alert.severity is AlertSeverity.WARNING
    with pytest.raises(ValueError, match="high_disk"):
        Alert("alr_1", "ws", "app", "high_disk", "warning", "m", 1, None, None)  # type: ignore[arg-type]
