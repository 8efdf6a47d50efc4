#!/usr/bin/env python3
"""Strom from Python: a client generated from proto/ with grpcio-tools.

Creates a topic, produces records (key, value, headers, timestamp) with
acks=all to each partition leader with RecordsService.ProduceRecords and
consumes them back decoded with RecordsService.ConsumeRecords, checking
every record. No Kafka record batch codec: the broker builds and decodes
the batches, so nothing but the .proto files and grpcio is needed.

    pip install -r examples/python/requirements.txt
    python3 examples/python/strom_example.py --bootstrap-server 127.0.0.1:9092

Then it joins a consumer group (--group) as a KIP-848 member with nothing
but the stubs: ConsumerGroupHeartbeat (join, acknowledge, leave),
ConsumeMemberRecords (all its partitions in one call, from the group's
committed offsets, decoded) and OffsetCommit. With --rust-member PATH/TO/strom it first starts
`strom consume --group` on the same topic and checks that the two members
split the partitions (each owned by exactly one of them).

The gRPC code is generated at start into a temporary directory (or
--gen-dir), never committed. Exit status 0 when every record came back.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_ROOT = os.path.join(REPO, "proto")


# --- code generation ---------------------------------------------------------

def generate(out_dir):
    """Runs protoc (from grpcio-tools) over every .proto under proto/."""
    import grpc_tools
    from grpc_tools import protoc

    protos = []
    for root, _, files in os.walk(PROTO_ROOT):
        protos += [os.path.relpath(os.path.join(root, f), PROTO_ROOT) for f in files if f.endswith(".proto")]
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = ["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{well_known}",
            f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"] + sorted(protos)
    if protoc.main(args) != 0:
        raise SystemExit(f"error: protoc failed on {protos}")
    sys.path.insert(0, out_dir)


# --- the example -------------------------------------------------------------

# Errors a client retries after finding the leader again.
RETRIABLE = ("NOT_LEADER_OR_FOLLOWER", "LEADER_NOT_AVAILABLE", "NOT_ENOUGH_REPLICAS",
             "UNKNOWN_TOPIC_OR_PARTITION", "REQUEST_TIMED_OUT", "FENCED_LEADER_EPOCH")


class Strom:
    """Channels per address, and the generated stubs."""

    def __init__(self, bootstrap):
        import grpc
        from strom.v1 import common_pb2, controller_pb2, controller_pb2_grpc, records_pb2, records_pb2_grpc
        self.grpc = grpc
        self.cpb, self.common, self.rpb = controller_pb2, common_pb2, records_pb2
        self.controller_grpc, self.records_grpc = controller_pb2_grpc, records_pb2_grpc
        self.bootstrap = bootstrap.split(",")
        self.channels = {}

    def channel(self, address):
        if address not in self.channels:
            self.channels[address] = self.grpc.insecure_channel(address)
        return self.channels[address]

    def error_name(self, code):
        return self.common.ErrorCode.Name(code)

    def any_node(self, call):
        """Runs call(channel) on the first bootstrap node that answers."""
        last = None
        for address in self.bootstrap:
            try:
                return call(self.channel(address))
            except self.grpc.RpcError as e:
                last = e
        raise SystemExit(f"error: no bootstrap node answered: {last.code().name}: {last.details()}")

    def metadata(self, topic):
        req = self.cpb.MetadataRequest(topics=[topic] if topic else [])
        return self.any_node(
            lambda ch: self.controller_grpc.MetadataServiceStub(ch).Metadata(req, timeout=5))

    def create_topic(self, name, partitions, replication_factor, configs):
        req = self.cpb.CreateTopicsRequest(topics=[self.cpb.CreatableTopic(
            name=name, num_partitions=partitions, replication_factor=replication_factor,
            configs=configs)])
        resp = self.any_node(
            lambda ch: self.controller_grpc.ControllerServiceStub(ch).CreateTopics(req, timeout=15))
        result = resp.topics[0]
        if result.error_code != 0:
            raise SystemExit(f"error: {self.error_name(result.error_code)}: {result.error_message}")
        return uuid.UUID(bytes=bytes(result.topic_id))

    def leaders(self, topic, timeout=30):
        """partition -> leader address, once every partition has a leader."""
        deadline = time.monotonic() + timeout
        while True:
            md = self.metadata(topic)
            brokers = {b.id: b.address for b in md.brokers}
            found, count = {}, None
            for t in md.topics:
                if t.name == topic and t.error_code == 0:
                    count = len(t.partitions)
                    found = {p.partition: brokers.get(p.leader) for p in t.partitions if p.leader >= 0}
            if count and len(found) == count and all(found.values()):
                return found
            if time.monotonic() > deadline:
                raise SystemExit(f"error: LEADER_NOT_AVAILABLE: {topic} has leaders only for {sorted(found)}")
            time.sleep(0.2)

    def produce(self, topic, partition, records, retries=20):
        """Sends records (RecordMessage) to the partition leader with
        ProduceRecords, acks=all; the base offset."""
        for _ in range(retries):
            leader = self.leaders(topic)[partition]
            req = self.rpb.ProduceRecordsRequest(acks=-1, timeout_ms=10000, topics=[
                self.rpb.ProduceRecordsTopic(topic=topic, partitions=[
                    self.rpb.ProduceRecordsPartition(partition=partition, records=records)])])
            stub = self.records_grpc.RecordsServiceStub(self.channel(leader))
            p = stub.ProduceRecords(req, timeout=15).topics[0].partitions[0]
            if p.error_code == 0:
                return p.base_offset
            name = self.error_name(p.error_code)
            if name not in RETRIABLE:
                raise SystemExit(f"error: {name}: {p.error_message}")
            time.sleep(0.2)
        raise SystemExit(f"error: {name}: produce to {topic}-{partition} kept failing")

    def consume(self, topic, partition, offset, until_offset, timeout=30):
        """Reads the partition from its leader with ConsumeRecords, decoded,
        from offset up to until_offset; the ConsumedRecord messages."""
        records = []
        deadline = time.monotonic() + timeout
        while offset < until_offset:
            if time.monotonic() > deadline:
                raise SystemExit(f"error: REQUEST_TIMED_OUT: read {topic}-{partition} up to {offset} only")
            leader = self.leaders(topic)[partition]
            stub = self.records_grpc.RecordsServiceStub(self.channel(leader))
            try:
                resp = stub.ConsumeRecords(self.rpb.ConsumeRecordsRequest(
                    topic=topic, partition=partition, offset=offset, max_records=500, max_wait_ms=500),
                    timeout=10)
            except self.grpc.RpcError as e:
                # The ErrorCode travels in the status; a leader change is retried.
                if not any(name in (e.details() or "") for name in RETRIABLE):
                    raise SystemExit(f"error: ConsumeRecords {topic}-{partition}@{offset}: "
                                     f"{e.code().name}: {e.details()}")
                time.sleep(0.2)
                continue
            records += [r for r in resp.records if r.offset < until_offset]
            offset = resp.next_offset
        return records


class GroupMember:
    """A consumer group member over GroupService and RecordsService only."""

    def __init__(self, strom, group, topic):
        from strom.v1 import group_pb2, group_pb2_grpc, records_pb2, records_pb2_grpc
        self.strom, self.group, self.topic = strom, group, topic
        self.gpb, self.ggrpc = group_pb2, group_pb2_grpc
        self.rpb, self.rgrpc = records_pb2, records_pb2_grpc
        self.member_id, self.epoch, self.interval = "", 0, 0.5
        self.assigned = []
        self.coordinator = None

    def call(self, method, req, timeout=30):
        """Calls the coordinator, finding it (again) on any error, until timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.coordinator is None:
                    found = self.strom.any_node(lambda ch: self.ggrpc.GroupServiceStub(ch).FindCoordinator(
                        self.gpb.FindCoordinatorRequest(group_id=self.group), timeout=5))
                    self.coordinator = found.address
                stub = self.ggrpc.GroupServiceStub(self.strom.channel(self.coordinator))
                return getattr(stub, method)(req, timeout=10)
            except (self.strom.grpc.RpcError, SystemExit) as e:
                # NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ...: find it again.
                self.coordinator = None
                if time.monotonic() > deadline:
                    raise SystemExit(f"error: {method} for group {self.group} kept failing: {e}")
                time.sleep(0.2)

    def heartbeat(self):
        """Joins (epoch 0) or heartbeats, reporting the partitions it owns;
        takes the answered assignment at once (it holds no records between
        heartbeats, so revoking is immediate)."""
        joining = self.epoch == 0
        req = self.gpb.ConsumerGroupHeartbeatRequest(
            group_id=self.group, member_id=self.member_id, member_epoch=self.epoch,
            client_id="python-example",
            owned=self.gpb.OwnedPartitions(topics=[] if joining else [
                self.gpb.TopicPartitions(topic=self.topic, partitions=self.assigned)]))
        if joining:
            req.rebalance_timeout_ms = 60000
            req.session_timeout_ms = 10000
            req.subscription.CopyFrom(self.gpb.Subscription(topic_names=[self.topic]))
        resp = self.call("ConsumerGroupHeartbeat", req)
        self.member_id, self.epoch = resp.member_id, resp.member_epoch
        self.interval = max(resp.heartbeat_interval_ms, 100) / 1000
        self.assigned = sorted(p for t in resp.assignment if t.topic == self.topic for p in t.partitions)

    def leave(self):
        self.call("ConsumerGroupHeartbeat", self.gpb.ConsumerGroupHeartbeatRequest(
            group_id=self.group, member_id=self.member_id, member_epoch=-1))

    def members(self):
        """member id -> partitions of the topic, as the coordinator describes them."""
        d = self.call("DescribeGroup", self.gpb.DescribeGroupRequest(group_id=self.group))
        return {m.member_id: sorted(p for t in m.assignment if t.topic == self.topic for p in t.partitions)
                for m in d.members}

    def consume_and_commit(self):
        """Reads every owned partition from the committed offset (else the
        earliest) to its high watermark with ConsumeMemberRecords (one call
        for all of them, to the coordinator, which reads them on their
        leaders), then commits; the record count."""
        count, positions, done = 0, {}, set()
        deadline = time.monotonic() + 60
        while done != set(self.assigned):
            r = self.call("ConsumeMemberRecords", self.gpb.ConsumeMemberRecordsRequest(
                group_id=self.group, member_id=self.member_id, member_epoch=self.epoch,
                auto_offset_reset="earliest", max_records=500,
                positions=[self.gpb.MemberPosition(topic=self.topic, partition=p, offset=o)
                           for p, o in positions.items()]))
            for p in r.partitions:
                if p.error:
                    # This partition only (its leader moving, ...): read it again.
                    if time.monotonic() > deadline:
                        raise SystemExit(f"error: ConsumeMemberRecords {p.topic}-{p.partition}: "
                                         f"{self.strom.error_name(p.error)}: {p.error_message}")
                    time.sleep(0.2)
                    continue
                count += len(p.records)
                positions[p.partition] = p.next_offset
                if p.next_offset >= p.high_watermark:
                    done.add(p.partition)
            if time.monotonic() > deadline:
                raise SystemExit(f"error: partitions {sorted(set(self.assigned) - done)} were not read to the end")
        commits = [self.gpb.OffsetCommitPartition(partition=p, offset=o, leader_epoch=-1)
                   for p, o in sorted(positions.items())]
        self.call("OffsetCommit", self.gpb.OffsetCommitRequest(
            group_id=self.group, member_id=self.member_id, member_epoch=self.epoch,
            topics=[self.gpb.OffsetCommitTopic(topic=self.topic, partitions=commits)]))
        return count


def group_demo(strom, args, partitions):
    """Joins --group on the topic (next to a Rust member with --rust-member),
    waits until every partition is owned by exactly one member, consumes and
    commits its own partitions, and leaves."""
    rust = None
    want_members = 1
    if args.rust_member:
        rust = subprocess.Popen(
            [args.rust_member, "--bootstrap-server", args.bootstrap_server, "consume", "--topic", args.topic,
             "--group", args.group, "--from-beginning", "--consumer-props", "session.timeout.ms=6000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        want_members = 2
    try:
        member = GroupMember(strom, args.group, args.topic)
        deadline = time.monotonic() + 60
        while True:
            member.heartbeat()
            members = member.members()
            owned = [p for ps in members.values() for p in ps]
            if (len(members) == want_members and all(members.values())
                    and sorted(owned) == list(range(partitions)) and member.assigned == members.get(member.member_id)):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"error: the group never split {partitions} partitions over {want_members} "
                                 f"members: {members}")
            time.sleep(member.interval)
        print(f"group {args.group}: {len(members)} member(s) split {partitions} partitions, "
              f"each owned once; the Python member owns {member.assigned}")
        count = member.consume_and_commit()
        print(f"consumed {count} records from partitions {member.assigned} with ConsumeMemberRecords "
              f"and committed")
        member.leave()
        print(f"left group {args.group}")
    finally:
        if rust is not None:
            rust.terminate()
            rust.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap-server", default=os.environ.get("STROM_BOOTSTRAP_SERVER", "127.0.0.1:9092"),
                    help="HOST:PORT[,HOST:PORT...] of any nodes (env STROM_BOOTSTRAP_SERVER)")
    ap.add_argument("--topic", default=f"python-example-{uuid.uuid4().hex[:8]}")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--records", type=int, default=100, help="records per partition")
    ap.add_argument("--gen-dir", help="where to generate the gRPC code (default: a temporary directory)")
    ap.add_argument("--group", default=f"python-example-{uuid.uuid4().hex[:8]}",
                    help="the consumer group the example joins")
    ap.add_argument("--rust-member", metavar="PATH",
                    help="a strom binary: run `strom consume --group` as a second member and check the split")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="strom-python-") as tmp:
        out = args.gen_dir or tmp
        os.makedirs(out, exist_ok=True)
        generate(out)
        strom = Strom(args.bootstrap_server)

        md = strom.metadata(None)
        rf = min(3, len(md.brokers))
        configs = {"min.insync.replicas": "2"} if rf == 3 else {}
        print(f"cluster {md.cluster_id}: {len(md.brokers)} brokers, controller {md.controller_id}")
        topic_id = strom.create_topic(args.topic, args.partitions, rf, configs)
        print(f"created topic {args.topic} ({topic_id}): {args.partitions} partitions, replication factor {rf}")

        sent = {}
        now = int(time.time() * 1000)
        for partition in range(args.partitions):
            records = [strom.rpb.RecordMessage(
                key=f"key-{i}".encode(), value=f"value {partition}/{i} from python".encode(),
                headers=[strom.rpb.RecordMessageHeader(key="source", value=b"python"),
                         strom.rpb.RecordMessageHeader(key="null-header")],
                timestamp_ms=now + i) for i in range(args.records)]
            # A tombstone (null value) and a null key round-trip too.
            records.append(strom.rpb.RecordMessage(key=b"deleted", timestamp_ms=now))
            records.append(strom.rpb.RecordMessage(value=b"no key", timestamp_ms=now))
            base = strom.produce(args.topic, partition, records)
            sent[partition] = (base, records)
            print(f"produced {len(records)} records to {args.topic}-{partition} at offsets "
                  f"{base}..{base + len(records) - 1} with ProduceRecords (acks=all)")

        def fields(offset, r):
            return (offset, r.timestamp_ms,
                    r.key if r.HasField("key") else None,
                    r.value if r.HasField("value") else None,
                    [(h.key, h.value if h.HasField("value") else None) for h in r.headers])

        for partition, (base, records) in sent.items():
            got = [fields(r.offset, r) for r in strom.consume(args.topic, partition, base, base + len(records))]
            want = [fields(base + i, r) for i, r in enumerate(records)]
            if got != want:
                raise SystemExit(f"error: {args.topic}-{partition}: consumed records differ from produced ones:\n"
                                 f"  want {want[:3]}...\n  got  {got[:3]}...")
            print(f"consumed {len(got)} records from {args.topic}-{partition} with ConsumeRecords: "
                  "keys, values, headers and timestamps all match")
        group_demo(strom, args, args.partitions)
        print("ok")


if __name__ == "__main__":
    main()
