#!/usr/bin/env python3
"""confluent-kafka's AdminClient (librdkafka) against Strom's Kafka
listener, driven by integration-tests/tests/kafka.rs. Each command prints
one JSON object on stdout; a request Kafka refuses prints
{"error": "<KAFKA_ERROR_NAME>", "message": "..."} and still exits 0, so
the test asserts on the refusal. Exits 1 on anything else.

  describe-cluster BOOTSTRAP
      {"cluster_id", "controller", "brokers": [{"id", "host", "port", "rack"}]}
  describe-configs BOOTSTRAP topic|broker NAME
      {"configs": {NAME: {"value", "source", "read_only", "sensitive"}}}
  alter-configs BOOTSTRAP topic|broker NAME OP:KEY[=VALUE]...
      IncrementalAlterConfigs; OP is set, delete, append or subtract.
      {"ok": true}
  legacy-alter-configs BOOTSTRAP topic NAME KEY=VALUE...
      AlterConfigs (the whole set of the topic's own configs). {"ok": true}
  create-partitions BOOTSTRAP TOPIC TOTAL
      {"ok": true}
  delete-records BOOTSTRAP TOPIC PARTITION OFFSET
      {"low_watermark"}
  elect-leaders BOOTSTRAP preferred|unclean TOPIC PARTITION
      {"result": null | "<KAFKA_ERROR_NAME>"}
"""

import json
import sys

from confluent_kafka import ElectionType, KafkaException, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewPartitions, ResourceType)

TIMEOUT_S = 30


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def resource_type(kind):
    return {"topic": ResourceType.TOPIC, "broker": ResourceType.BROKER}[kind]


def describe_cluster(a):
    c = a.describe_cluster(request_timeout=TIMEOUT_S).result(TIMEOUT_S)
    return {
        "cluster_id": c.cluster_id,
        "controller": c.controller.id if c.controller else None,
        "brokers": sorted(({"id": n.id, "host": n.host, "port": n.port, "rack": n.rack}
                           for n in c.nodes), key=lambda b: b["id"]),
    }


def describe_configs(a, kind, name):
    res = ConfigResource(resource_type(kind), name)
    entries = a.describe_configs([res], request_timeout=TIMEOUT_S)[res].result(TIMEOUT_S)
    return {"configs": {k: {"value": e.value, "source": ConfigSource(e.source).name,
                            "read_only": e.is_read_only, "sensitive": e.is_sensitive}
                        for k, e in entries.items()}}


def alter_configs(a, kind, name, changes):
    ops = {"set": AlterConfigOpType.SET, "delete": AlterConfigOpType.DELETE,
           "append": AlterConfigOpType.APPEND, "subtract": AlterConfigOpType.SUBTRACT}
    entries = []
    for change in changes:
        op, _, kv = change.partition(":")
        key, _, value = kv.partition("=")
        entries.append(ConfigEntry(key, value if op != "delete" else None,
                                   incremental_operation=ops[op]))
    res = ConfigResource(resource_type(kind), name, incremental_configs=entries)
    a.incremental_alter_configs([res], request_timeout=TIMEOUT_S)[res].result(TIMEOUT_S)
    return {"ok": True}


def legacy_alter_configs(a, kind, name, pairs):
    res = ConfigResource(resource_type(kind), name,
                         set_config=dict(p.split("=", 1) for p in pairs))
    a.alter_configs([res], request_timeout=TIMEOUT_S)[res].result(TIMEOUT_S)
    return {"ok": True}


def create_partitions(a, topic, total):
    a.create_partitions([NewPartitions(topic, total)],
                        request_timeout=TIMEOUT_S)[topic].result(TIMEOUT_S)
    return {"ok": True}


def delete_records(a, topic, partition, offset):
    tp = TopicPartition(topic, partition, offset)
    futures = a.delete_records([tp], request_timeout=TIMEOUT_S)
    (only,) = futures.values()
    return {"low_watermark": only.result(TIMEOUT_S).low_watermark}


def elect_leaders(a, kind, topic, partition):
    election = {"preferred": ElectionType.PREFERRED, "unclean": ElectionType.UNCLEAN}[kind]
    # No request_timeout here: confluent-kafka 2.16's binding of
    # elect_leaders fails on any keyword argument (SystemError).
    results = a.elect_leaders(election, [TopicPartition(topic, partition)]).result(TIMEOUT_S)
    (err,) = results.values()
    return {"result": None if err is None else err.name()}


def run(argv):
    cmd, bootstrap, args = argv[0], argv[1], argv[2:]
    a = admin(bootstrap)
    if cmd == "describe-cluster":
        return describe_cluster(a)
    if cmd == "describe-configs":
        return describe_configs(a, args[0], args[1])
    if cmd == "alter-configs":
        return alter_configs(a, args[0], args[1], args[2:])
    if cmd == "legacy-alter-configs":
        return legacy_alter_configs(a, args[0], args[1], args[2:])
    if cmd == "create-partitions":
        return create_partitions(a, args[0], int(args[1]))
    if cmd == "delete-records":
        return delete_records(a, args[0], int(args[1]), int(args[2]))
    if cmd == "elect-leaders":
        return elect_leaders(a, args[0], args[1], int(args[2]))
    return None


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        out = run(argv)
    except KafkaException as e:
        err = e.args[0]
        out = {"error": err.name(), "message": err.str()}
    if out is None:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
