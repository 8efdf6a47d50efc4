#!/usr/bin/env python3
"""A consumer-group member over Kafka's classic group protocol, driven by
integration-tests/tests/kafka_groups.rs.

  confluent BOOTSTRAP GROUP TOPIC STRATEGY
      confluent-kafka (librdkafka) subscribe() with
      partition.assignment.strategy=STRATEGY; commits each record
      synchronously.
  confluent-848 BOOTSTRAP GROUP TOPIC ASSIGNOR
      confluent-kafka with group.protocol=consumer (KIP-848's
      ConsumerGroupHeartbeat) and group.remote.assignor=ASSIGNOR.
  kafka-python BOOTSTRAP GROUP TOPIC STRATEGY
      the same with kafka-python's KafkaConsumer (range or roundrobin).

Prints JSON lines on stdout, flushed at once:
  {"assignment": [partitions]}          each time its assignment changes
  {"record": [partition, offset, value]}
  {"commit_error": "..."}               a commit refused (it goes on)
  {"closed": true}                      after close() (LeaveGroup)
A line "close" on stdin closes the consumer (it leaves the group) and
exits 0; end of stdin does the same.
"""

import json
import sys
import threading
import time

STOP = threading.Event()


def emit(obj):
    print(json.dumps(obj), flush=True)


def watch_stdin():
    for line in sys.stdin:
        if line.strip() == "close":
            break
    STOP.set()


def confluent(bootstrap, group, topic, strategy, kip848=False):
    from confluent_kafka import Consumer, KafkaException

    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    }
    if kip848:
        config.update({
            "client.id": f"confluent-848-{strategy}",
            "group.protocol": "consumer",
            "group.remote.assignor": strategy,
        })
    else:
        config.update({
            "client.id": f"confluent-{strategy}",
            "partition.assignment.strategy": strategy,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        })
    consumer = Consumer(config)
    consumer.subscribe([topic])
    last = None
    while not STOP.is_set():
        msg = consumer.poll(0.2)
        now = sorted(tp.partition for tp in consumer.assignment())
        if now != last:
            emit({"assignment": now})
            last = now
        if msg is None:
            continue
        if msg.error():
            emit({"error": str(msg.error())})
            continue
        emit({"record": [msg.partition(), msg.offset(), msg.value().decode()]})
        try:
            consumer.commit(message=msg, asynchronous=False)
        except KafkaException as e:
            emit({"commit_error": str(e)})
    consumer.close()
    emit({"closed": True})


def kafka_python(bootstrap, group, topic, strategy):
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.structs import OffsetAndMetadata

    assignor = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}[strategy]
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=group,
        client_id=f"kafka-python-{strategy}",
        partition_assignment_strategy=[assignor],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    consumer.subscribe([topic])
    last = None
    while not STOP.is_set():
        batches = consumer.poll(timeout_ms=200)
        now = sorted(tp.partition for tp in consumer.assignment())
        if now != last:
            emit({"assignment": now})
            last = now
        for tp, records in batches.items():
            for r in records:
                emit({"record": [r.partition, r.offset, r.value.decode()]})
                try:
                    consumer.commit({tp: OffsetAndMetadata(r.offset + 1, None, -1)})
                except Exception as e:  # noqa: BLE001 - reported, not fatal
                    emit({"commit_error": str(e)})
    consumer.close()
    emit({"closed": True})


def main(argv):
    if len(argv) != 5 or argv[0] not in ("confluent", "confluent-848", "kafka-python"):
        print(__doc__, file=sys.stderr)
        return 2
    threading.Thread(target=watch_stdin, daemon=True).start()
    if argv[0] == "kafka-python":
        kafka_python(argv[1], argv[2], argv[3], argv[4])
    else:
        confluent(argv[1], argv[2], argv[3], argv[4], kip848=argv[0] == "confluent-848")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
