#!/usr/bin/env python3
"""kafka-python's KafkaAdminClient (a pure-Python Kafka client, not
librdkafka) for the admin APIs confluent-kafka lacks, against Strom's Kafka
listener, driven by integration-tests/tests/kafka.rs. Each command prints
one JSON object; a refusal prints {"error": "<KafkaErrorClass>"} and exits
0, so the test asserts on it.

  reassign BOOTSTRAP TOPIC PARTITION B1,B2,...|cancel
      AlterPartitionReassignments. {"result": null | "<KafkaErrorClass>"}
  list-reassignments BOOTSTRAP
      ListPartitionReassignments.
      {"reassignments": [{"topic", "partition", "replicas", "adding", "removing"}]}
  describe-log-dirs BOOTSTRAP BROKER_ID
      DescribeLogDirs. {"dirs": [{"log_dir", "error", "partitions": [{"topic", "partition", "size"}]}]}
"""

import json
import sys

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

TIMEOUT_MS = 30000


def error_name(e):
    return None if e is None else getattr(e, "__name__", type(e).__name__)


def reassign(a, topic, partition, replicas):
    target = None if replicas == "cancel" else [int(b) for b in replicas.split(",")]
    results = a.alter_partition_reassignments({TopicPartition(topic, partition): target},
                                              timeout_ms=TIMEOUT_MS)
    errors = list(results.values())
    return {"result": error_name(errors[0]) if errors else None}


def list_reassignments(a):
    listed = a.list_partition_reassignments(timeout_ms=TIMEOUT_MS)
    return {"reassignments": sorted(({"topic": tp.topic, "partition": tp.partition,
                                      "replicas": r["replicas"],
                                      "adding": r["adding_replicas"],
                                      "removing": r["removing_replicas"]}
                                     for tp, r in listed.items()),
                                    key=lambda r: (r["topic"], r["partition"]))}


def describe_log_dirs(a, broker):
    dirs = []
    for answer in a.describe_log_dirs(brokers=[broker]):
        for d in answer["log_dirs"]:
            dirs.append({
                "log_dir": d.get("log_dir"),
                "error": d.get("error_code"),
                "partitions": [{"topic": t.get("name"), "partition": p.get("partition_index"),
                                "size": p.get("partition_size")}
                               for t in d.get("topics") or [] for p in t.get("partitions") or []],
            })
    return {"dirs": dirs}


def run(argv):
    cmd, bootstrap, args = argv[0], argv[1], argv[2:]
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    try:
        if cmd == "reassign":
            return reassign(a, args[0], int(args[1]), args[2])
        if cmd == "list-reassignments":
            return list_reassignments(a)
        if cmd == "describe-log-dirs":
            return describe_log_dirs(a, int(args[0]))
        return None
    finally:
        a.close()


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        out = run(argv)
    except KafkaError as e:
        out = {"error": type(e).__name__, "message": str(e)}
    if out is None:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
