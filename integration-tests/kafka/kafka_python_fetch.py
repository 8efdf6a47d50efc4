#!/usr/bin/env python3
"""kafka-python's consumer, which fetches in KIP-227 incremental fetch
sessions (librdkafka never does), against Strom's Kafka listener; driven
by integration-tests/tests/kafka.rs.

  consume BOOTSTRAP TOPIC PARTITIONS N
      assign()s partitions 0..PARTITIONS-1 from the beginning and reads
      until N records arrived. Prints one JSON line per record,
      {"partition","offset","value"}, then
      {"sessions": {...}} counting what kafka-python's session handler
      logged: "created" (a full answer created a session), "incremental"
      (an incremental answer continued it), "closed", "full" (a full answer
      without a session), "refused" (a session error answered) and
      "invalid" (an answer breaking KIP-227's rules: a full answer missing
      a partition, an incremental one with a partition not in the session).

Exits 1 with the error on stderr when N records do not arrive in time.
"""

import json
import logging
import sys
import time

from kafka import KafkaConsumer, TopicPartition

TIMEOUT_S = 60

PATTERNS = {
    "created": "created a new incremental fetch session",
    "incremental": "sent an incremental fetch response for session",
    "closed": "sent an incremental fetch response closing session",
    "full": "sent a full fetch response with",
    "refused": "was unable to process the fetch request",
    "invalid": "sent an invalid",
}


class SessionEvents(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.counts = {k: 0 for k in PATTERNS}

    def emit(self, record):
        message = record.getMessage()
        for name, pattern in PATTERNS.items():
            if pattern in message:
                self.counts[name] += 1


def consume(bootstrap, topic, partitions, count):
    events = SessionEvents()
    log = logging.getLogger("kafka.consumer.fetcher")
    log.setLevel(logging.DEBUG)
    log.addHandler(events)
    log.propagate = False
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=200,
        enable_incremental_fetch_sessions=True,
    )
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    consumer.seek_to_beginning()
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < count and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            for r in records:
                got.append({"partition": tp.partition, "offset": r.offset,
                            "value": r.value.decode("utf-8")})
    consumer.close()
    for r in got:
        print(json.dumps(r))
    print(json.dumps({"sessions": events.counts}))
    if len(got) < count:
        print(f"error: {len(got)} of {count} records within {TIMEOUT_S}s", file=sys.stderr)
        return 1
    return 0


def main(argv):
    if len(argv) >= 5 and argv[0] == "consume":
        return consume(argv[1], argv[2], int(argv[3]), int(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
