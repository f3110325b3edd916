from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Order(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_UNSPECIFIED: _ClassVar[Order]
    ORDER_FIFO: _ClassVar[Order]
    ORDER_LIFO: _ClassVar[Order]

class NackOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NACK_OUTCOME_UNSPECIFIED: _ClassVar[NackOutcome]
    NACK_OUTCOME_REDELIVER: _ClassVar[NackOutcome]
    NACK_OUTCOME_DEAD_LETTERED: _ClassVar[NackOutcome]

class MessageState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_STATE_UNSPECIFIED: _ClassVar[MessageState]
    MESSAGE_STATE_READY: _ClassVar[MessageState]
    MESSAGE_STATE_DELAYED: _ClassVar[MessageState]
    MESSAGE_STATE_LEASED: _ClassVar[MessageState]
    MESSAGE_STATE_DEAD: _ClassVar[MessageState]
ORDER_UNSPECIFIED: Order
ORDER_FIFO: Order
ORDER_LIFO: Order
NACK_OUTCOME_UNSPECIFIED: NackOutcome
NACK_OUTCOME_REDELIVER: NackOutcome
NACK_OUTCOME_DEAD_LETTERED: NackOutcome
MESSAGE_STATE_UNSPECIFIED: MessageState
MESSAGE_STATE_READY: MessageState
MESSAGE_STATE_DELAYED: MessageState
MESSAGE_STATE_LEASED: MessageState
MESSAGE_STATE_DEAD: MessageState

class QueueConfig(_message.Message):
    __slots__ = ("order", "lease_ms", "max_deliveries", "dead_letter_queue", "message_ttl_ms", "max_length", "max_bytes", "default_delay_ms", "dedup_window_ms", "backoff_base_ms", "backoff_max_ms", "max_message_bytes")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_QUEUE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    DEDUP_WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_BASE_MS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_MAX_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    order: Order
    lease_ms: int
    max_deliveries: int
    dead_letter_queue: str
    message_ttl_ms: int
    max_length: int
    max_bytes: int
    default_delay_ms: int
    dedup_window_ms: int
    backoff_base_ms: int
    backoff_max_ms: int
    max_message_bytes: int
    def __init__(self, order: _Optional[_Union[Order, str]] = ..., lease_ms: _Optional[int] = ..., max_deliveries: _Optional[int] = ..., dead_letter_queue: _Optional[str] = ..., message_ttl_ms: _Optional[int] = ..., max_length: _Optional[int] = ..., max_bytes: _Optional[int] = ..., default_delay_ms: _Optional[int] = ..., dedup_window_ms: _Optional[int] = ..., backoff_base_ms: _Optional[int] = ..., backoff_max_ms: _Optional[int] = ..., max_message_bytes: _Optional[int] = ...) -> None: ...

class QueueStats(_message.Message):
    __slots__ = ("ready", "leased", "delayed", "dead", "total_bytes", "oldest_ready_age_ms", "published_total", "delivered_total", "acked_total", "nacked_total", "expired_total", "dead_lettered_total", "redriven_total", "duplicates_total", "dedup_evicted_total")
    READY_FIELD_NUMBER: _ClassVar[int]
    LEASED_FIELD_NUMBER: _ClassVar[int]
    DELAYED_FIELD_NUMBER: _ClassVar[int]
    DEAD_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    OLDEST_READY_AGE_MS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACKED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    NACKED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REDRIVEN_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DEDUP_EVICTED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ready: int
    leased: int
    delayed: int
    dead: int
    total_bytes: int
    oldest_ready_age_ms: int
    published_total: int
    delivered_total: int
    acked_total: int
    nacked_total: int
    expired_total: int
    dead_lettered_total: int
    redriven_total: int
    duplicates_total: int
    dedup_evicted_total: int
    def __init__(self, ready: _Optional[int] = ..., leased: _Optional[int] = ..., delayed: _Optional[int] = ..., dead: _Optional[int] = ..., total_bytes: _Optional[int] = ..., oldest_ready_age_ms: _Optional[int] = ..., published_total: _Optional[int] = ..., delivered_total: _Optional[int] = ..., acked_total: _Optional[int] = ..., nacked_total: _Optional[int] = ..., expired_total: _Optional[int] = ..., dead_lettered_total: _Optional[int] = ..., redriven_total: _Optional[int] = ..., duplicates_total: _Optional[int] = ..., dedup_evicted_total: _Optional[int] = ...) -> None: ...

class QueueInfo(_message.Message):
    __slots__ = ("name", "config", "stats", "created_at_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: QueueConfig
    stats: QueueStats
    created_at_ms: int
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[QueueConfig, _Mapping]] = ..., stats: _Optional[_Union[QueueStats, _Mapping]] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class CreateQueueRequest(_message.Message):
    __slots__ = ("queue", "config")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    queue: str
    config: QueueConfig
    def __init__(self, queue: _Optional[str] = ..., config: _Optional[_Union[QueueConfig, _Mapping]] = ...) -> None: ...

class CreateQueueResponse(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: QueueInfo
    def __init__(self, queue: _Optional[_Union[QueueInfo, _Mapping]] = ...) -> None: ...

class GetQueueRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class GetQueueResponse(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: QueueInfo
    def __init__(self, queue: _Optional[_Union[QueueInfo, _Mapping]] = ...) -> None: ...

class ListQueuesRequest(_message.Message):
    __slots__ = ("prefix", "start_after", "limit")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    start_after: str
    limit: int
    def __init__(self, prefix: _Optional[str] = ..., start_after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListQueuesResponse(_message.Message):
    __slots__ = ("queues", "next_start_after")
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    NEXT_START_AFTER_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueInfo]
    next_start_after: str
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueInfo, _Mapping]]] = ..., next_start_after: _Optional[str] = ...) -> None: ...

class UpdateQueueRequest(_message.Message):
    __slots__ = ("queue", "config")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    queue: str
    config: QueueConfig
    def __init__(self, queue: _Optional[str] = ..., config: _Optional[_Union[QueueConfig, _Mapping]] = ...) -> None: ...

class UpdateQueueResponse(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: QueueInfo
    def __init__(self, queue: _Optional[_Union[QueueInfo, _Mapping]] = ...) -> None: ...

class DeleteQueueRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class DeleteQueueResponse(_message.Message):
    __slots__ = ("messages_deleted",)
    MESSAGES_DELETED_FIELD_NUMBER: _ClassVar[int]
    messages_deleted: int
    def __init__(self, messages_deleted: _Optional[int] = ...) -> None: ...

class PurgeQueueRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class PurgeQueueResponse(_message.Message):
    __slots__ = ("messages_purged",)
    MESSAGES_PURGED_FIELD_NUMBER: _ClassVar[int]
    messages_purged: int
    def __init__(self, messages_purged: _Optional[int] = ...) -> None: ...

class PublishMessage(_message.Message):
    __slots__ = ("body", "attributes", "delay_ms", "idempotency_key")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BODY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    attributes: _containers.ScalarMap[str, str]
    delay_ms: int
    idempotency_key: str
    def __init__(self, body: _Optional[bytes] = ..., attributes: _Optional[_Mapping[str, str]] = ..., delay_ms: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("queue", "messages")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    queue: str
    messages: _containers.RepeatedCompositeFieldContainer[PublishMessage]
    def __init__(self, queue: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[PublishMessage, _Mapping]]] = ...) -> None: ...

class PublishResult(_message.Message):
    __slots__ = ("message_id", "duplicate")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    message_id: int
    duplicate: bool
    def __init__(self, message_id: _Optional[int] = ..., duplicate: bool = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PublishResult]
    def __init__(self, results: _Optional[_Iterable[_Union[PublishResult, _Mapping]]] = ...) -> None: ...

class PublishStreamRequest(_message.Message):
    __slots__ = ("sequence", "queue", "messages")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    queue: str
    messages: _containers.RepeatedCompositeFieldContainer[PublishMessage]
    def __init__(self, sequence: _Optional[int] = ..., queue: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[PublishMessage, _Mapping]]] = ...) -> None: ...

class PublishWindow(_message.Message):
    __slots__ = ("requests", "bytes")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    requests: int
    bytes: int
    def __init__(self, requests: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class PublishConfirm(_message.Message):
    __slots__ = ("sequence", "results")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    results: _containers.RepeatedCompositeFieldContainer[PublishResult]
    def __init__(self, sequence: _Optional[int] = ..., results: _Optional[_Iterable[_Union[PublishResult, _Mapping]]] = ...) -> None: ...

class StreamRejection(_message.Message):
    __slots__ = ("sequence", "code", "message", "details", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    code: int
    message: str
    details: bytes
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, sequence: _Optional[int] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., details: _Optional[bytes] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PublishStreamResponse(_message.Message):
    __slots__ = ("window", "confirm", "rejected")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    window: PublishWindow
    confirm: PublishConfirm
    rejected: StreamRejection
    def __init__(self, window: _Optional[_Union[PublishWindow, _Mapping]] = ..., confirm: _Optional[_Union[PublishConfirm, _Mapping]] = ..., rejected: _Optional[_Union[StreamRejection, _Mapping]] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("queue", "message_id", "delivery_count")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    queue: str
    message_id: int
    delivery_count: int
    def __init__(self, queue: _Optional[str] = ..., message_id: _Optional[int] = ..., delivery_count: _Optional[int] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("message", "receipt", "lease_expires_at_ms")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    message: MessageView
    receipt: Receipt
    lease_expires_at_ms: int
    def __init__(self, message: _Optional[_Union[MessageView, _Mapping]] = ..., receipt: _Optional[_Union[Receipt, _Mapping]] = ..., lease_expires_at_ms: _Optional[int] = ...) -> None: ...

class ReceiveRequest(_message.Message):
    __slots__ = ("queue", "max_messages", "lease_ms", "wait_ms")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    queue: str
    max_messages: int
    lease_ms: int
    wait_ms: int
    def __init__(self, queue: _Optional[str] = ..., max_messages: _Optional[int] = ..., lease_ms: _Optional[int] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class ReceiveResponse(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("queue", "prefetch", "lease_ms")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    PREFETCH_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    queue: str
    prefetch: int
    lease_ms: int
    def __init__(self, queue: _Optional[str] = ..., prefetch: _Optional[int] = ..., lease_ms: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("delivery",)
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    delivery: Delivery
    def __init__(self, delivery: _Optional[_Union[Delivery, _Mapping]] = ...) -> None: ...

class ConsumeRequest(_message.Message):
    __slots__ = ("subscribe", "settle", "stop")
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    SETTLE_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    subscribe: SubscribeRequest
    settle: ConsumeSettle
    stop: ConsumeStop
    def __init__(self, subscribe: _Optional[_Union[SubscribeRequest, _Mapping]] = ..., settle: _Optional[_Union[ConsumeSettle, _Mapping]] = ..., stop: _Optional[_Union[ConsumeStop, _Mapping]] = ...) -> None: ...

class ConsumeStop(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConsumeSettle(_message.Message):
    __slots__ = ("sequence", "ack", "nack", "extend_lease")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    EXTEND_LEASE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    ack: AckRequest
    nack: NackRequest
    extend_lease: ExtendLeaseRequest
    def __init__(self, sequence: _Optional[int] = ..., ack: _Optional[_Union[AckRequest, _Mapping]] = ..., nack: _Optional[_Union[NackRequest, _Mapping]] = ..., extend_lease: _Optional[_Union[ExtendLeaseRequest, _Mapping]] = ...) -> None: ...

class ConsumeSettled(_message.Message):
    __slots__ = ("sequence", "ack", "nack", "extend_lease", "rejected")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    EXTEND_LEASE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    ack: AckResponse
    nack: NackResponse
    extend_lease: ExtendLeaseResponse
    rejected: StreamRejection
    def __init__(self, sequence: _Optional[int] = ..., ack: _Optional[_Union[AckResponse, _Mapping]] = ..., nack: _Optional[_Union[NackResponse, _Mapping]] = ..., extend_lease: _Optional[_Union[ExtendLeaseResponse, _Mapping]] = ..., rejected: _Optional[_Union[StreamRejection, _Mapping]] = ...) -> None: ...

class ConsumeResponse(_message.Message):
    __slots__ = ("delivery", "settled")
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    delivery: Delivery
    settled: ConsumeSettled
    def __init__(self, delivery: _Optional[_Union[Delivery, _Mapping]] = ..., settled: _Optional[_Union[ConsumeSettled, _Mapping]] = ...) -> None: ...

class NackBatchRequest(_message.Message):
    __slots__ = ("nacks",)
    NACKS_FIELD_NUMBER: _ClassVar[int]
    nacks: _containers.RepeatedCompositeFieldContainer[NackRequest]
    def __init__(self, nacks: _Optional[_Iterable[_Union[NackRequest, _Mapping]]] = ...) -> None: ...

class NackBatchResult(_message.Message):
    __slots__ = ("nack", "failed")
    NACK_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    nack: NackResponse
    failed: StreamRejection
    def __init__(self, nack: _Optional[_Union[NackResponse, _Mapping]] = ..., failed: _Optional[_Union[StreamRejection, _Mapping]] = ...) -> None: ...

class NackBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[NackBatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[NackBatchResult, _Mapping]]] = ...) -> None: ...

class ExtendLeaseBatchRequest(_message.Message):
    __slots__ = ("extensions",)
    EXTENSIONS_FIELD_NUMBER: _ClassVar[int]
    extensions: _containers.RepeatedCompositeFieldContainer[ExtendLeaseRequest]
    def __init__(self, extensions: _Optional[_Iterable[_Union[ExtendLeaseRequest, _Mapping]]] = ...) -> None: ...

class ExtendLeaseBatchResult(_message.Message):
    __slots__ = ("extended", "failed")
    EXTENDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    extended: ExtendLeaseResponse
    failed: StreamRejection
    def __init__(self, extended: _Optional[_Union[ExtendLeaseResponse, _Mapping]] = ..., failed: _Optional[_Union[StreamRejection, _Mapping]] = ...) -> None: ...

class ExtendLeaseBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ExtendLeaseBatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ExtendLeaseBatchResult, _Mapping]]] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("receipts",)
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[Receipt]
    def __init__(self, receipts: _Optional[_Iterable[_Union[Receipt, _Mapping]]] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ("acked",)
    ACKED_FIELD_NUMBER: _ClassVar[int]
    acked: int
    def __init__(self, acked: _Optional[int] = ...) -> None: ...

class NackRequest(_message.Message):
    __slots__ = ("receipt", "delay_ms", "dead_letter", "reason")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    receipt: Receipt
    delay_ms: int
    dead_letter: bool
    reason: str
    def __init__(self, receipt: _Optional[_Union[Receipt, _Mapping]] = ..., delay_ms: _Optional[int] = ..., dead_letter: bool = ..., reason: _Optional[str] = ...) -> None: ...

class NackResponse(_message.Message):
    __slots__ = ("outcome", "visible_at_ms")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    VISIBLE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    outcome: NackOutcome
    visible_at_ms: int
    def __init__(self, outcome: _Optional[_Union[NackOutcome, str]] = ..., visible_at_ms: _Optional[int] = ...) -> None: ...

class ExtendLeaseRequest(_message.Message):
    __slots__ = ("receipt", "lease_ms")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    receipt: Receipt
    lease_ms: int
    def __init__(self, receipt: _Optional[_Union[Receipt, _Mapping]] = ..., lease_ms: _Optional[int] = ...) -> None: ...

class ExtendLeaseResponse(_message.Message):
    __slots__ = ("lease_expires_at_ms",)
    LEASE_EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    lease_expires_at_ms: int
    def __init__(self, lease_expires_at_ms: _Optional[int] = ...) -> None: ...

class DeadLetterInfo(_message.Message):
    __slots__ = ("source_queue", "source_message_id", "delivery_count", "reason", "dead_lettered_at_ms")
    SOURCE_QUEUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    source_queue: str
    source_message_id: int
    delivery_count: int
    reason: str
    dead_lettered_at_ms: int
    def __init__(self, source_queue: _Optional[str] = ..., source_message_id: _Optional[int] = ..., delivery_count: _Optional[int] = ..., reason: _Optional[str] = ..., dead_lettered_at_ms: _Optional[int] = ...) -> None: ...

class HistoryEvent(_message.Message):
    __slots__ = ("at_ms", "published", "delivered", "lease_extended", "lease_expired", "released", "nacked", "requeued", "dead_lettered", "redriven")
    class Published(_message.Message):
        __slots__ = ("visible_at_ms",)
        VISIBLE_AT_MS_FIELD_NUMBER: _ClassVar[int]
        visible_at_ms: int
        def __init__(self, visible_at_ms: _Optional[int] = ...) -> None: ...
    class Delivered(_message.Message):
        __slots__ = ("delivery_count", "lease_expires_at_ms")
        DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
        LEASE_EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
        delivery_count: int
        lease_expires_at_ms: int
        def __init__(self, delivery_count: _Optional[int] = ..., lease_expires_at_ms: _Optional[int] = ...) -> None: ...
    class LeaseExtended(_message.Message):
        __slots__ = ("delivery_count", "lease_expires_at_ms")
        DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
        LEASE_EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
        delivery_count: int
        lease_expires_at_ms: int
        def __init__(self, delivery_count: _Optional[int] = ..., lease_expires_at_ms: _Optional[int] = ...) -> None: ...
    class LeaseExpired(_message.Message):
        __slots__ = ("delivery_count",)
        DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
        delivery_count: int
        def __init__(self, delivery_count: _Optional[int] = ...) -> None: ...
    class Released(_message.Message):
        __slots__ = ("delivery_count",)
        DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
        delivery_count: int
        def __init__(self, delivery_count: _Optional[int] = ...) -> None: ...
    class Nacked(_message.Message):
        __slots__ = ("delivery_count", "reason")
        DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
        REASON_FIELD_NUMBER: _ClassVar[int]
        delivery_count: int
        reason: str
        def __init__(self, delivery_count: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...
    class Requeued(_message.Message):
        __slots__ = ("visible_at_ms",)
        VISIBLE_AT_MS_FIELD_NUMBER: _ClassVar[int]
        visible_at_ms: int
        def __init__(self, visible_at_ms: _Optional[int] = ...) -> None: ...
    class DeadLettered(_message.Message):
        __slots__ = ("reason", "target_queue")
        REASON_FIELD_NUMBER: _ClassVar[int]
        TARGET_QUEUE_FIELD_NUMBER: _ClassVar[int]
        reason: str
        target_queue: str
        def __init__(self, reason: _Optional[str] = ..., target_queue: _Optional[str] = ...) -> None: ...
    class Redriven(_message.Message):
        __slots__ = ("from_queue",)
        FROM_QUEUE_FIELD_NUMBER: _ClassVar[int]
        from_queue: str
        def __init__(self, from_queue: _Optional[str] = ...) -> None: ...
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXTENDED_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    NACKED_FIELD_NUMBER: _ClassVar[int]
    REQUEUED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    REDRIVEN_FIELD_NUMBER: _ClassVar[int]
    at_ms: int
    published: HistoryEvent.Published
    delivered: HistoryEvent.Delivered
    lease_extended: HistoryEvent.LeaseExtended
    lease_expired: HistoryEvent.LeaseExpired
    released: HistoryEvent.Released
    nacked: HistoryEvent.Nacked
    requeued: HistoryEvent.Requeued
    dead_lettered: HistoryEvent.DeadLettered
    redriven: HistoryEvent.Redriven
    def __init__(self, at_ms: _Optional[int] = ..., published: _Optional[_Union[HistoryEvent.Published, _Mapping]] = ..., delivered: _Optional[_Union[HistoryEvent.Delivered, _Mapping]] = ..., lease_extended: _Optional[_Union[HistoryEvent.LeaseExtended, _Mapping]] = ..., lease_expired: _Optional[_Union[HistoryEvent.LeaseExpired, _Mapping]] = ..., released: _Optional[_Union[HistoryEvent.Released, _Mapping]] = ..., nacked: _Optional[_Union[HistoryEvent.Nacked, _Mapping]] = ..., requeued: _Optional[_Union[HistoryEvent.Requeued, _Mapping]] = ..., dead_lettered: _Optional[_Union[HistoryEvent.DeadLettered, _Mapping]] = ..., redriven: _Optional[_Union[HistoryEvent.Redriven, _Mapping]] = ...) -> None: ...

class MessageView(_message.Message):
    __slots__ = ("message_id", "body", "attributes", "published_at_ms", "delivery_count", "state", "visible_at_ms", "lease_expires_at_ms", "expires_at_ms", "idempotency_key", "dead_letter", "history")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VISIBLE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    message_id: int
    body: bytes
    attributes: _containers.ScalarMap[str, str]
    published_at_ms: int
    delivery_count: int
    state: MessageState
    visible_at_ms: int
    lease_expires_at_ms: int
    expires_at_ms: int
    idempotency_key: str
    dead_letter: DeadLetterInfo
    history: _containers.RepeatedCompositeFieldContainer[HistoryEvent]
    def __init__(self, message_id: _Optional[int] = ..., body: _Optional[bytes] = ..., attributes: _Optional[_Mapping[str, str]] = ..., published_at_ms: _Optional[int] = ..., delivery_count: _Optional[int] = ..., state: _Optional[_Union[MessageState, str]] = ..., visible_at_ms: _Optional[int] = ..., lease_expires_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., dead_letter: _Optional[_Union[DeadLetterInfo, _Mapping]] = ..., history: _Optional[_Iterable[_Union[HistoryEvent, _Mapping]]] = ...) -> None: ...

class PeekRequest(_message.Message):
    __slots__ = ("queue", "state", "after_id", "limit")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    queue: str
    state: MessageState
    after_id: int
    limit: int
    def __init__(self, queue: _Optional[str] = ..., state: _Optional[_Union[MessageState, str]] = ..., after_id: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class PeekResponse(_message.Message):
    __slots__ = ("messages", "next_after_id")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[MessageView]
    next_after_id: int
    def __init__(self, messages: _Optional[_Iterable[_Union[MessageView, _Mapping]]] = ..., next_after_id: _Optional[int] = ...) -> None: ...

class InspectRequest(_message.Message):
    __slots__ = ("queue", "message_id")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    queue: str
    message_id: int
    def __init__(self, queue: _Optional[str] = ..., message_id: _Optional[int] = ...) -> None: ...

class InspectResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: MessageView
    def __init__(self, message: _Optional[_Union[MessageView, _Mapping]] = ...) -> None: ...

class RedriveRequest(_message.Message):
    __slots__ = ("queue", "max_messages", "messages_per_second")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    queue: str
    max_messages: int
    messages_per_second: int
    def __init__(self, queue: _Optional[str] = ..., max_messages: _Optional[int] = ..., messages_per_second: _Optional[int] = ...) -> None: ...

class RedriveResponse(_message.Message):
    __slots__ = ("moved",)
    MOVED_FIELD_NUMBER: _ClassVar[int]
    moved: int
    def __init__(self, moved: _Optional[int] = ...) -> None: ...

class TopicConfig(_message.Message):
    __slots__ = ("require_route", "dedup_window_ms")
    REQUIRE_ROUTE_FIELD_NUMBER: _ClassVar[int]
    DEDUP_WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    require_route: bool
    dedup_window_ms: int
    def __init__(self, require_route: bool = ..., dedup_window_ms: _Optional[int] = ...) -> None: ...

class FilterValues(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class FilterCondition(_message.Message):
    __slots__ = ("key", "equals", "one_of", "prefix", "exists", "not_exists")
    KEY_FIELD_NUMBER: _ClassVar[int]
    EQUALS_FIELD_NUMBER: _ClassVar[int]
    ONE_OF_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    NOT_EXISTS_FIELD_NUMBER: _ClassVar[int]
    key: str
    equals: str
    one_of: FilterValues
    prefix: str
    exists: bool
    not_exists: bool
    def __init__(self, key: _Optional[str] = ..., equals: _Optional[str] = ..., one_of: _Optional[_Union[FilterValues, _Mapping]] = ..., prefix: _Optional[str] = ..., exists: bool = ..., not_exists: bool = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("conditions",)
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    conditions: _containers.RepeatedCompositeFieldContainer[FilterCondition]
    def __init__(self, conditions: _Optional[_Iterable[_Union[FilterCondition, _Mapping]]] = ...) -> None: ...

class Binding(_message.Message):
    __slots__ = ("queue", "filter")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    queue: str
    filter: Filter
    def __init__(self, queue: _Optional[str] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class TopicStats(_message.Message):
    __slots__ = ("published_total", "routed_copies_total", "unrouted_total", "duplicates_total", "dedup_evicted_total")
    PUBLISHED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ROUTED_COPIES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    UNROUTED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DEDUP_EVICTED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    published_total: int
    routed_copies_total: int
    unrouted_total: int
    duplicates_total: int
    dedup_evicted_total: int
    def __init__(self, published_total: _Optional[int] = ..., routed_copies_total: _Optional[int] = ..., unrouted_total: _Optional[int] = ..., duplicates_total: _Optional[int] = ..., dedup_evicted_total: _Optional[int] = ...) -> None: ...

class TopicInfo(_message.Message):
    __slots__ = ("name", "config", "stats", "bindings", "created_at_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    BINDINGS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: TopicConfig
    stats: TopicStats
    bindings: _containers.RepeatedCompositeFieldContainer[Binding]
    created_at_ms: int
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[TopicConfig, _Mapping]] = ..., stats: _Optional[_Union[TopicStats, _Mapping]] = ..., bindings: _Optional[_Iterable[_Union[Binding, _Mapping]]] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class CreateTopicRequest(_message.Message):
    __slots__ = ("topic", "config")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    topic: str
    config: TopicConfig
    def __init__(self, topic: _Optional[str] = ..., config: _Optional[_Union[TopicConfig, _Mapping]] = ...) -> None: ...

class CreateTopicResponse(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: TopicInfo
    def __init__(self, topic: _Optional[_Union[TopicInfo, _Mapping]] = ...) -> None: ...

class GetTopicRequest(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: str
    def __init__(self, topic: _Optional[str] = ...) -> None: ...

class GetTopicResponse(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: TopicInfo
    def __init__(self, topic: _Optional[_Union[TopicInfo, _Mapping]] = ...) -> None: ...

class ListTopicsRequest(_message.Message):
    __slots__ = ("prefix", "start_after", "limit")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    start_after: str
    limit: int
    def __init__(self, prefix: _Optional[str] = ..., start_after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListTopicsResponse(_message.Message):
    __slots__ = ("topics", "next_start_after")
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    NEXT_START_AFTER_FIELD_NUMBER: _ClassVar[int]
    topics: _containers.RepeatedCompositeFieldContainer[TopicInfo]
    next_start_after: str
    def __init__(self, topics: _Optional[_Iterable[_Union[TopicInfo, _Mapping]]] = ..., next_start_after: _Optional[str] = ...) -> None: ...

class DeleteTopicRequest(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: str
    def __init__(self, topic: _Optional[str] = ...) -> None: ...

class DeleteTopicResponse(_message.Message):
    __slots__ = ("bindings_removed",)
    BINDINGS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    bindings_removed: int
    def __init__(self, bindings_removed: _Optional[int] = ...) -> None: ...

class BindRequest(_message.Message):
    __slots__ = ("topic", "queue", "filter")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    topic: str
    queue: str
    filter: Filter
    def __init__(self, topic: _Optional[str] = ..., queue: _Optional[str] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class BindResponse(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: TopicInfo
    def __init__(self, topic: _Optional[_Union[TopicInfo, _Mapping]] = ...) -> None: ...

class UnbindRequest(_message.Message):
    __slots__ = ("topic", "queue")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    topic: str
    queue: str
    def __init__(self, topic: _Optional[str] = ..., queue: _Optional[str] = ...) -> None: ...

class UnbindResponse(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: TopicInfo
    def __init__(self, topic: _Optional[_Union[TopicInfo, _Mapping]] = ...) -> None: ...

class PublishTopicRequest(_message.Message):
    __slots__ = ("topic", "messages")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    topic: str
    messages: _containers.RepeatedCompositeFieldContainer[PublishMessage]
    def __init__(self, topic: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[PublishMessage, _Mapping]]] = ...) -> None: ...

class TopicCopy(_message.Message):
    __slots__ = ("queue", "message_id", "duplicate")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    message_id: int
    duplicate: bool
    def __init__(self, queue: _Optional[str] = ..., message_id: _Optional[int] = ..., duplicate: bool = ...) -> None: ...

class TopicPublishResult(_message.Message):
    __slots__ = ("message_id", "duplicate", "copies")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    COPIES_FIELD_NUMBER: _ClassVar[int]
    message_id: int
    duplicate: bool
    copies: _containers.RepeatedCompositeFieldContainer[TopicCopy]
    def __init__(self, message_id: _Optional[int] = ..., duplicate: bool = ..., copies: _Optional[_Iterable[_Union[TopicCopy, _Mapping]]] = ...) -> None: ...

class PublishTopicResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TopicPublishResult]
    def __init__(self, results: _Optional[_Iterable[_Union[TopicPublishResult, _Mapping]]] = ...) -> None: ...
