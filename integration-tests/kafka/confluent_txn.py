#!/usr/bin/env python3
"""confluent-kafka (librdkafka) transactions against Strom's Kafka
listener, driven by integration-tests/tests/kafka_txn.rs.

  produce BOOTSTRAP TOPIC TXN_ID commit|abort
        one transaction holding one record per stdin line "key:value"
        (partitioned by key), then committed or aborted. Prints
        {"result": "commit"|"abort", "records": N}.
  read BOOTSTRAP TOPIC PARTITIONS read_committed|read_uncommitted
        every record of partitions 0..PARTITIONS-1 from the beginning up to
        the end the consumer sees (the last stable offset under
        read_committed), with assign(). One JSON line per record:
        {"key","value","partition","offset"}.
  ctp BOOTSTRAP IN OUT GROUP TXN_ID N BATCH abort-last|commit-all
        consume-transform-produce: reads N records of IN partition 0 from
        the beginning with assign(), and per BATCH records writes each value
        upper-cased to OUT partition 0 and sends the consumer's position
        with the transaction (send_offsets_to_transaction); each transaction
        committed, or the last one aborted with abort-last. Prints
        {"committed": records in committed transactions, "aborted": ...}.
  fence BOOTSTRAP TOPIC TXN_ID
        producer A opens a transaction and sends "a:zombie"; producer B,
        same transactional.id, initialises (fencing A), then commits
        "b:winner"; then A commits. Prints {"a_error": name, "a_fatal":
        bool, "b": "committed"}.

Exits 1 with the error on stderr when a step fails or times out.
"""

import json
import sys
import time

from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition, OFFSET_BEGINNING)

TIMEOUT_S = 60


def text(b):
    return None if b is None else b.decode("utf-8")


def producer(bootstrap, txn_id):
    p = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "acks": "all",
        "linger.ms": 5,
        "transaction.timeout.ms": 60000,
        "message.timeout.ms": TIMEOUT_S * 1000,
    })
    p.init_transactions(TIMEOUT_S)
    return p


def produce(bootstrap, topic, txn_id, how):
    p = producer(bootstrap, txn_id)
    p.begin_transaction()
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(str(err))

    n = 0
    for line in sys.stdin.read().splitlines():
        key, _, value = line.partition(":")
        p.produce(topic, value=value.encode(), key=key.encode(), on_delivery=delivered)
        p.poll(0)
        n += 1
    if p.flush(TIMEOUT_S) or errors:
        print(f"error: delivery failed: {errors[:3]}", file=sys.stderr)
        return 1
    if how == "commit":
        p.commit_transaction(TIMEOUT_S)
    else:
        p.abort_transaction(TIMEOUT_S)
    print(json.dumps({"result": how, "records": n}))
    return 0


def read(bootstrap, topic, partitions, isolation):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "kafka-txn-it-read",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": isolation,
    })
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    at_end = set()
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(at_end) < partitions and time.monotonic() < deadline:
        msg = c.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition())
                continue
            raise KafkaException(msg.error())
        at_end.discard(msg.partition())
        got.append({
            "key": text(msg.key()),
            "value": text(msg.value()),
            "partition": msg.partition(),
            "offset": msg.offset(),
        })
    c.close()
    for r in got:
        print(json.dumps(r))
    if len(at_end) < partitions:
        print(f"error: the end of {partitions - len(at_end)} partitions not reached", file=sys.stderr)
        return 1
    return 0


def ctp(bootstrap, src, dst, group, txn_id, n, batch, how):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    c.assign([TopicPartition(src, 0, OFFSET_BEGINNING)])
    p = producer(bootstrap, txn_id)
    done = {"committed": 0, "aborted": 0}
    deadline = time.monotonic() + TIMEOUT_S
    while done["committed"] + done["aborted"] < n:
        p.begin_transaction()
        taken = 0
        while taken < batch and done["committed"] + done["aborted"] + taken < n:
            if time.monotonic() > deadline:
                print(f"error: {done} of {n} within {TIMEOUT_S}s", file=sys.stderr)
                return 1
            msg = c.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            p.produce(dst, key=msg.key(), value=msg.value().upper(), partition=0)
            taken += 1
        p.send_offsets_to_transaction(c.position(c.assignment()),
                                      c.consumer_group_metadata(), TIMEOUT_S)
        last = done["committed"] + done["aborted"] + taken >= n
        if last and how == "abort-last":
            p.abort_transaction(TIMEOUT_S)
            done["aborted"] += taken
        else:
            p.commit_transaction(TIMEOUT_S)
            done["committed"] += taken
    c.close()
    print(json.dumps(done))
    return 0


def fence(bootstrap, topic, txn_id):
    a = producer(bootstrap, txn_id)
    a.begin_transaction()
    a.produce(topic, key=b"a", value=b"zombie", partition=0)
    if a.flush(TIMEOUT_S):
        print("error: A's record undelivered", file=sys.stderr)
        return 1
    b = producer(bootstrap, txn_id)
    b.begin_transaction()
    b.produce(topic, key=b"b", value=b"winner", partition=0)
    b.commit_transaction(TIMEOUT_S)
    out = {"b": "committed"}
    try:
        a.commit_transaction(TIMEOUT_S)
        out["a_error"] = None
        out["a_fatal"] = False
    except KafkaException as e:
        err = e.args[0]
        out["a_error"] = err.name()
        out["a_fatal"] = err.fatal()
    print(json.dumps(out))
    return 0


def main(argv):
    if len(argv) == 5 and argv[0] == "produce":
        return produce(argv[1], argv[2], argv[3], argv[4])
    if len(argv) == 5 and argv[0] == "read":
        return read(argv[1], argv[2], int(argv[3]), argv[4])
    if len(argv) == 9 and argv[0] == "ctp":
        return ctp(argv[1], argv[2], argv[3], argv[4], argv[5], int(argv[6]), int(argv[7]), argv[8])
    if len(argv) == 4 and argv[0] == "fence":
        return fence(argv[1], argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
