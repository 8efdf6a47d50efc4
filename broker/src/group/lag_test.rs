use std::sync::Mutex;

use strom_proto::v1::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};

use super::*;

/// One ListOffsets call: leader → (topic, partitions).
type Call = (i32, Vec<(String, Vec<i32>)>);

/// Leaders that answer from a table of end offsets, recording each call.
#[derive(Debug, Default)]
struct FakeLeaders {
    /// (leader, topic, partition) → end offset, or an error code.
    ends: HashMap<(i32, String, i32), Result<i64, ErrorCode>>,
    /// Leaders that do not answer at all.
    down: BTreeSet<i32>,
    calls: Mutex<Vec<Call>>,
}

impl EndOffsets for FakeLeaders {
    fn list_offsets(
        &self,
        leader: i32,
        request: ListOffsetsRequest,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<ListOffsetsResponse, tonic::Status>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push((
                leader,
                request
                    .topics
                    .iter()
                    .map(|t| {
                        (
                            t.topic.clone(),
                            t.partitions.iter().map(|p| p.partition).collect(),
                        )
                    })
                    .collect(),
            ));
            if self.down.contains(&leader) {
                return Err(tonic::Status::unavailable("down"));
            }
            Ok(ListOffsetsResponse {
                topics: request
                    .topics
                    .into_iter()
                    .map(|t| ListOffsetsTopicResponse {
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| {
                                let answer = self
                                    .ends
                                    .get(&(leader, t.topic.clone(), p.partition))
                                    .copied()
                                    .unwrap_or(Err(ErrorCode::NotLeaderOrFollower));
                                ListOffsetsPartitionResponse {
                                    partition: p.partition,
                                    error_code: answer.err().unwrap_or(ErrorCode::None) as i32,
                                    offset: answer.unwrap_or(-1),
                                    ..Default::default()
                                }
                            })
                            .collect(),
                        topic: t.topic,
                    })
                    .collect(),
            })
        })
    }
}

fn plan(rows: &[(i32, &str, &[i32])]) -> BTreeMap<i32, BTreeMap<String, BTreeSet<i32>>> {
    let mut out: BTreeMap<i32, BTreeMap<String, BTreeSet<i32>>> = BTreeMap::new();
    for (leader, topic, partitions) in rows {
        out.entry(*leader)
            .or_default()
            .insert((*topic).to_owned(), partitions.iter().copied().collect());
    }
    out
}

#[tokio::test]
async fn end_offsets_ask_each_leader_once_and_skip_what_failed() {
    let leaders = FakeLeaders {
        ends: [
            ((1, "a".to_owned(), 0), Ok(10)),
            ((1, "a".to_owned(), 1), Err(ErrorCode::NotLeaderOrFollower)),
            ((1, "b".to_owned(), 0), Ok(0)),
            ((2, "a".to_owned(), 2), Ok(7)),
        ]
        .into_iter()
        .collect(),
        down: [3].into_iter().collect(),
        calls: Mutex::default(),
    };
    let ends = end_offsets(
        &leaders,
        &plan(&[
            (1, "a", &[0, 1]),
            (1, "b", &[0]),
            (2, "a", &[2]),
            (3, "c", &[0]),
        ]),
        Duration::from_secs(1),
    )
    .await;
    let mut got: Vec<((String, i32), i64)> = ends.into_iter().collect();
    got.sort();
    assert_eq!(
        got,
        [
            (("a".to_owned(), 0), 10),
            (("a".to_owned(), 2), 7),
            (("b".to_owned(), 0), 0)
        ]
    );
    let mut calls = leaders.calls.lock().unwrap().clone();
    calls.sort();
    assert_eq!(
        calls,
        [
            (
                1,
                vec![("a".to_owned(), vec![0, 1]), ("b".to_owned(), vec![0])]
            ),
            (2, vec![("a".to_owned(), vec![2])]),
            (3, vec![("c".to_owned(), vec![0])]),
        ],
        "one request per leader"
    );
}

#[test]
fn the_request_asks_for_the_latest_offsets() {
    let r = request_for(&plan(&[(1, "a", &[3, 1])])[&1]);
    assert_eq!(r.replica_id, -1);
    assert_eq!(r.isolation_level, IsolationLevel::ReadUncommitted as i32);
    let partitions: Vec<(i32, i64)> = r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition, p.timestamp))
        .collect();
    assert_eq!(partitions, [(1, -1), (3, -1)]);
}
