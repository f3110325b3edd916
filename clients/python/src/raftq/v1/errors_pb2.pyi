from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    INVALID_ARGUMENT: _ClassVar[ErrorReason]
    QUEUE_NOT_FOUND: _ClassVar[ErrorReason]
    MESSAGE_NOT_FOUND: _ClassVar[ErrorReason]
    QUEUE_EXISTS: _ClassVar[ErrorReason]
    LEASE_EXPIRED: _ClassVar[ErrorReason]
    RECEIPT_UNKNOWN: _ClassVar[ErrorReason]
    QUEUE_FULL: _ClassVar[ErrorReason]
    MESSAGE_TOO_LARGE: _ClassVar[ErrorReason]
    REQUEST_TOO_LARGE: _ClassVar[ErrorReason]
    QUEUE_LIMIT_REACHED: _ClassVar[ErrorReason]
    OVERLOADED: _ClassVar[ErrorReason]
    DISK_LOW: _ClassVar[ErrorReason]
    NOT_LEADER: _ClassVar[ErrorReason]
    NO_LEADER: _ClassVar[ErrorReason]
    NODE_STOPPED: _ClassVar[ErrorReason]
    OUTCOME_UNKNOWN: _ClassVar[ErrorReason]
    UNSUPPORTED_FORMAT: _ClassVar[ErrorReason]
    UNAUTHENTICATED: _ClassVar[ErrorReason]
    PERMISSION_DENIED: _ClassVar[ErrorReason]
    MEMBERSHIP_CHANGE_REFUSED: _ClassVar[ErrorReason]
    STORE_FAULT: _ClassVar[ErrorReason]
    NODE_NOT_FOUND: _ClassVar[ErrorReason]
    TOPIC_NOT_FOUND: _ClassVar[ErrorReason]
    TOPIC_EXISTS: _ClassVar[ErrorReason]
    BINDING_NOT_FOUND: _ClassVar[ErrorReason]
    UNROUTABLE: _ClassVar[ErrorReason]
    LIMIT_REACHED: _ClassVar[ErrorReason]
    PUBLISH_WINDOW_EXCEEDED: _ClassVar[ErrorReason]
ERROR_REASON_UNSPECIFIED: ErrorReason
INVALID_ARGUMENT: ErrorReason
QUEUE_NOT_FOUND: ErrorReason
MESSAGE_NOT_FOUND: ErrorReason
QUEUE_EXISTS: ErrorReason
LEASE_EXPIRED: ErrorReason
RECEIPT_UNKNOWN: ErrorReason
QUEUE_FULL: ErrorReason
MESSAGE_TOO_LARGE: ErrorReason
REQUEST_TOO_LARGE: ErrorReason
QUEUE_LIMIT_REACHED: ErrorReason
OVERLOADED: ErrorReason
DISK_LOW: ErrorReason
NOT_LEADER: ErrorReason
NO_LEADER: ErrorReason
NODE_STOPPED: ErrorReason
OUTCOME_UNKNOWN: ErrorReason
UNSUPPORTED_FORMAT: ErrorReason
UNAUTHENTICATED: ErrorReason
PERMISSION_DENIED: ErrorReason
MEMBERSHIP_CHANGE_REFUSED: ErrorReason
STORE_FAULT: ErrorReason
NODE_NOT_FOUND: ErrorReason
TOPIC_NOT_FOUND: ErrorReason
TOPIC_EXISTS: ErrorReason
BINDING_NOT_FOUND: ErrorReason
UNROUTABLE: ErrorReason
LIMIT_REACHED: ErrorReason
PUBLISH_WINDOW_EXCEEDED: ErrorReason
