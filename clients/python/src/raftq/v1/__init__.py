"""Generated protobuf and gRPC stubs of proto/raftq/v1/*.proto (all but the
nodes' internal raft.proto).

Do not edit: clients/python/generate.sh writes this package.
The messages here are what `raftq.Client` returns for queue and cluster
information (`queue_pb2.QueueInfo`, `queue_pb2.MessageView`,
`cluster_pb2.StatusResponse`).
"""
