//! What only the active controller does: fence brokers whose lease ran out,
//! write the cluster id, complete partition reassignments whose new
//! replicas caught up, drain decommissioning brokers, run the balancer
//! (`balancer.mode`) and rebalance leaders. The loops run for exactly one
//! term of leadership and stop as soon as it ends.

use std::time::Duration;

use openraft::ServerState;
use strom_metadata::pb::{ClusterRecord, MetadataRecord, metadata_record::Record};
use tokio_util::sync::CancellationToken;

use crate::Controller;

/// Watches Raft and runs [`term_duties`] while this node leads.
pub(crate) async fn run(controller: Controller) {
    let inner = controller.inner();
    let mut metrics = inner.raft.metrics();
    let mut current: Option<(u64, CancellationToken)> = None;
    loop {
        let (leading, term) = {
            let m = metrics.borrow_and_update();
            (
                m.state == ServerState::Leader && m.current_leader == Some(inner.id),
                m.current_term,
            )
        };
        match (&current, leading) {
            (Some((t, _)), true) if *t == term => {}
            (_, true) => {
                if let Some((_, token)) = current.take() {
                    token.cancel();
                }
                let token = inner.shutdown.child_token();
                tracing::info!(term, "became active controller");
                inner
                    .tasks
                    .spawn(term_duties(controller.clone(), token.clone()));
                current = Some((term, token));
            }
            (Some(_), false) => {
                if let Some((term, token)) = current.take() {
                    tracing::info!(term, "no longer active controller");
                    token.cancel();
                }
            }
            (None, false) => {}
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { break },
            _ = inner.shutdown.cancelled() => break,
        }
    }
    if let Some((_, token)) = current {
        token.cancel();
    }
}

async fn term_duties(controller: Controller, token: CancellationToken) {
    let inner = controller.inner();
    // Wait until everything committed before this term is applied, so the
    // image the duties decide on is current.
    loop {
        if token.is_cancelled() {
            return;
        }
        match inner.raft.ensure_linearizable().await {
            Ok(_) => break,
            Err(e) => {
                tracing::debug!(error = %e, "waiting for leadership to settle");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let brokers: Vec<(i32, String)> = controller.with_image(|image| {
        image
            .brokers()
            .map(|b| (b.id, b.incarnation_id.clone()))
            .collect()
    });
    inner.leases.rearm(brokers);

    ensure_cluster_id(&controller).await;

    let mut fence_tick = tokio::time::interval(Duration::from_millis(250));
    fence_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let rebalance_every = inner.config.leader_imbalance_check_interval;
    let mut rebalance_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + rebalance_every,
        rebalance_every,
    );
    rebalance_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When this term first saw each broker unavailable (the balancer's
    // `balancer.node.unavailable.timeout.ms`).
    let mut unavailable: std::collections::HashMap<i32, tokio::time::Instant> =
        std::collections::HashMap::new();
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = fence_tick.tick() => {
                fence_expired(&controller).await;
                complete_reassignments(&controller).await;
                decommission(&controller).await;
                balance(&controller, &mut unavailable).await;
            }
            _ = rebalance_tick.tick() => {
                if inner.config.auto_leader_rebalance_enable {
                    rebalance(&controller).await;
                }
            }
        }
    }
}

async fn ensure_cluster_id(controller: &Controller) {
    let result = controller
        .decide(|image| {
            if image.cluster_id().is_some() {
                return Ok((vec![], ()));
            }
            let cluster_id = uuid::Uuid::new_v4().to_string();
            tracing::info!(%cluster_id, "writing new cluster id");
            Ok((
                vec![MetadataRecord {
                    record: Some(Record::Cluster(ClusterRecord { cluster_id })),
                }],
                (),
            ))
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not write cluster id");
    }
}

async fn fence_expired(controller: &Controller) {
    let candidates: Vec<i32> = controller.with_image(|image| {
        image
            .brokers()
            .filter(|b| !b.fenced)
            .map(|b| b.id)
            .collect()
    });
    for broker in controller.inner().leases.expired(candidates) {
        let result = controller
            .decide(|image| match image.broker(broker) {
                Some(b) if !b.fenced => {
                    let min_isr = controller.default_min_isr(image);
                    Ok((strom_metadata::fence_broker(image, broker, min_isr), ()))
                }
                _ => Ok((vec![], ())),
            })
            .await;
        match result {
            Ok((_, Some(offset))) => {
                tracing::warn!(broker, offset, "fenced broker: session expired")
            }
            Ok((_, None)) => {}
            Err(e) => tracing::warn!(broker, error = %e, "could not fence broker"),
        }
    }
}

/// Completes the reassignments whose new replicas caught up (see
/// `strom_metadata::reassignment`).
async fn complete_reassignments(controller: &Controller) {
    // Most of the time nothing moves: skip the write lock then.
    if controller.with_image(|image| strom_metadata::reassignments(image, None).next().is_none()) {
        return;
    }
    let result = controller
        .decide(|image| {
            let min_isr = controller.default_min_isr(image);
            Ok((strom_metadata::complete_reassignments(image, min_isr), ()))
        })
        .await;
    match result {
        Ok((_, Some(offset))) => tracing::info!(offset, "completed partition reassignments"),
        Ok((_, None)) => {}
        Err(e) => tracing::warn!(error = %e, "completing reassignments failed"),
    }
}

/// One round of draining decommissioning brokers (see
/// `strom_metadata::decommission`).
async fn decommission(controller: &Controller) {
    if controller.with_image(|image| image.decommissioning().next().is_none()) {
        return;
    }
    let max_moves = controller.config().max_concurrent_moves_per_broker;
    let result = controller
        .decide(|image| {
            let min_isr = controller.default_min_isr(image);
            Ok((
                strom_metadata::decommission_moves(image, max_moves, min_isr),
                (),
            ))
        })
        .await;
    match result {
        Ok((_, Some(offset))) => {
            tracing::info!(offset, "decommissioning: moved leaderships or replicas")
        }
        Ok((_, None)) => {}
        Err(e) => tracing::warn!(error = %e, "decommissioning round failed"),
    }
}

/// One round of the balancer (see `strom_metadata::balancer`):
/// `continuous` first moves the replicas of brokers unavailable for longer
/// than `balancer.node.unavailable.timeout.ms` (timed from when this term
/// first saw them so), then replicas off brokers whose disk is over
/// `balancer.disk.threshold.percent`; then both modes fill under-loaded
/// brokers; then, with nothing moving, `continuous` evens leaders and
/// partition bytes per broker.
async fn balance(
    controller: &Controller,
    unavailable: &mut std::collections::HashMap<i32, tokio::time::Instant>,
) {
    use strom_metadata::balancer::{
        BalancerGoal, BalancerMode, balancer_moves, balancer_view, disk_balance_moves, disk_moves,
        leader_moves, unavailable_moves,
    };
    let mode = controller.config().balancer_mode;
    if mode == BalancerMode::Off {
        return;
    }
    let now = tokio::time::Instant::now();
    let down: Vec<i32> = controller.with_image(|image| {
        image
            .brokers()
            .filter(|b| !b.is_alive())
            .map(|b| b.id)
            .collect()
    });
    unavailable.retain(|id, _| down.contains(id));
    for id in &down {
        unavailable.entry(*id).or_insert(now);
    }
    let timeout = controller.config().balancer_node_unavailable_timeout;
    let mut gone: Vec<i32> = unavailable
        .iter()
        .filter(|(_, since)| now.saturating_duration_since(**since) >= timeout)
        .map(|(id, _)| *id)
        .collect();
    gone.sort_unstable();
    let continuous = mode == BalancerMode::Continuous;
    if !continuous {
        gone.clear();
    }
    let threshold = controller.config().balancer_disk_threshold_percent;
    let usage = controller.inner().sizes.usage_report();
    let disk_full = continuous && usage.disks.values().any(|d| d.over(threshold));
    let has_work = controller.with_image(|image| {
        let view = balancer_view(image);
        let stranded = !gone.is_empty()
            && image.all_partitions().any(|(_, _, s)| {
                !s.is_reassigning() && s.replicas.iter().any(|r| gone.contains(r))
            });
        stranded || disk_full || (view.moving == 0 && (view.unbalanced || continuous))
    });
    if !has_work {
        return;
    }
    let max_moves = controller.config().max_concurrent_moves_per_broker;
    let result = controller
        .decide(|image| {
            let min_isr = controller.default_min_isr(image);
            let goals: [(BalancerGoal, bool); 5] = [
                (BalancerGoal::Unavailable, true),
                (BalancerGoal::DiskThreshold, disk_full),
                (BalancerGoal::Replicas, true),
                (BalancerGoal::Leaders, continuous),
                (BalancerGoal::DiskUsage, continuous),
            ];
            for (goal, on) in goals {
                if !on {
                    continue;
                }
                let records = match goal {
                    BalancerGoal::Unavailable => {
                        unavailable_moves(image, &gone, max_moves, min_isr, &usage, threshold)
                    }
                    BalancerGoal::DiskThreshold => {
                        disk_moves(image, &usage, threshold, max_moves, min_isr)
                    }
                    BalancerGoal::Replicas => {
                        balancer_moves(image, mode, max_moves, min_isr, &usage, threshold)
                    }
                    BalancerGoal::Leaders => leader_moves(image),
                    BalancerGoal::DiskUsage => {
                        disk_balance_moves(image, &usage, threshold, max_moves, min_isr)
                    }
                };
                if !records.is_empty() {
                    let n = records.len();
                    return Ok((records, Some((goal, n))));
                }
            }
            Ok((Vec::new(), None))
        })
        .await;
    match result {
        Ok((Some((goal, partitions)), Some(offset))) => {
            controller.inner().balancer_stats.record(goal, partitions);
            tracing::info!(
                offset,
                ?mode,
                goal = goal.as_str(),
                partitions,
                ?gone,
                "balancer: started moves"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "balancer round failed"),
    }
}

async fn rebalance(controller: &Controller) {
    let pct = controller.config().leader_imbalance_per_broker_percentage;
    let result = controller
        .decide(|image| Ok((strom_metadata::rebalance_leaders(image, pct), ())))
        .await;
    match result {
        Ok((_, Some(offset))) => tracing::info!(offset, "rebalanced partition leaders"),
        Ok((_, None)) => {}
        Err(e) => tracing::warn!(error = %e, "leader rebalance failed"),
    }
}
