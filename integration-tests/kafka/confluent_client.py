#!/usr/bin/env python3
"""confluent-kafka (librdkafka) against Strom's Kafka listener, driven by
integration-tests/tests/kafka.rs.

  produce BOOTSTRAP TOPIC PARTITION   one record per stdin line, "key:value";
                                      idempotent producer, acks=all. Prints
                                      one JSON line per record:
                                      {"key","value","partition","offset"}.
  consume BOOTSTRAP TOPIC PARTITION N reads N records from the beginning
                                      with assign() (no group protocol).
                                      Prints one JSON line per record:
                                      {"key","value","partition","offset"}.
  chase BOOTSTRAP TOPIC PARTITION PREFIX
                                      idempotent producer, acks=all,
                                      sending values PREFIX-0, PREFIX-1, ...
                                      until stdin closes, then flushes.
                                      Prints {"value","offset"} per record
                                      acknowledged without error, then
                                      {"sent","failed","errors","undelivered"}.
                                      Exits 0 whatever was lost: the caller
                                      judges.

Exits 1 with the error on stderr when a record fails or N records do not
arrive within the timeout.
"""

import json
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING

TIMEOUT_S = 60


def text(b):
    return None if b is None else b.decode("utf-8")


def produce(bootstrap, topic, partition):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": TIMEOUT_S * 1000,
    })
    results = []
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            results.append({
                "key": text(msg.key()),
                "value": text(msg.value()),
                "partition": msg.partition(),
                "offset": msg.offset(),
            })

    for line in sys.stdin.read().splitlines():
        key, _, value = line.partition(":")
        producer.produce(topic, value=value.encode(), key=key.encode(),
                         partition=partition, on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(TIMEOUT_S)
    if errors or left:
        print(f"error: {len(errors)} failed, {left} undelivered: {errors[:3]}", file=sys.stderr)
        return 1
    for r in sorted(results, key=lambda r: r["offset"]):
        print(json.dumps(r))
    return 0


def consume(bootstrap, topic, partition, count):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        # assign() only: the group id names no group membership here.
        "group.id": "kafka-it-assign",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    })
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        got.append({
            "key": text(msg.key()),
            "value": text(msg.value()),
            "partition": msg.partition(),
            "offset": msg.offset(),
        })
    consumer.close()
    for r in got:
        print(json.dumps(r))
    if len(got) < count:
        print(f"error: {len(got)} of {count} records within {TIMEOUT_S}s", file=sys.stderr)
        return 1
    return 0


def chase(bootstrap, topic, partition, prefix):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        # Long enough to outlast every leader change of the test: a record
        # is acknowledged or fails, never silently dropped.
        "message.timeout.ms": 180000,
    })
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    acked = []
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked.append({"value": text(msg.value()), "offset": msg.offset()})

    sent = 0
    while not stop.is_set():
        try:
            producer.produce(topic, value=f"{prefix}-{sent}".encode(),
                             partition=partition, on_delivery=delivered)
            sent += 1
        except BufferError:
            pass
        producer.poll(0.002)
    left = producer.flush(180)
    for r in acked:
        print(json.dumps(r))
    print(json.dumps({"sent": sent, "failed": len(errors), "errors": errors[:5],
                      "undelivered": left}))
    return 0


def main(argv):
    if len(argv) >= 4 and argv[0] == "produce":
        return produce(argv[1], argv[2], int(argv[3]))
    if len(argv) >= 5 and argv[0] == "chase":
        return chase(argv[1], argv[2], int(argv[3]), argv[4])
    if len(argv) >= 5 and argv[0] == "consume":
        return consume(argv[1], argv[2], int(argv[3]), int(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
