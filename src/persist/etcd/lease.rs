//! This node's health view at `nodes/NODE`, under a lease kept alive while the
//! node runs (others stop counting it when it dies).

use std::time::Duration;

use etcd_client::PutOptions;
use tokio::sync::watch;

use super::client::Connector;
use crate::health::Votes;
use crate::persist::encoding::enc;

/// How long a node's health view outlives it.
const NODE_TTL: i64 = 6;

/// Publishes this node's health view at `nodes/NODE` under a lease, and keeps the
/// lease alive; when the node dies the key expires and others stop counting it.
pub async fn health_loop(conn: Connector, prefix: String, node: String, mut views: watch::Receiver<Votes>) {
    let key = format!("{prefix}nodes/{}", enc(&node));
    loop {
        let run = async {
            let mut client = conn.get().await?;
            let lease = client.lease_grant(NODE_TTL, None).await?.id();
            let (mut keeper, mut acks) = client.lease_keep_alive(lease).await?;
            let body = serde_json::to_string(&*views.borrow_and_update()).unwrap_or_default();
            client.put(key.clone(), body, Some(PutOptions::new().with_lease(lease))).await?;
            let mut tick = tokio::time::interval(Duration::from_secs((NODE_TTL / 3).max(1) as u64));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        keeper.keep_alive().await?;
                        // The keep-alive stream has no request deadline of its own: an
                        // answer that does not come means a new lease, like one that is gone.
                        let ack = tokio::time::timeout(Duration::from_secs(2), acks.message()).await;
                        match ack {
                            Ok(Ok(Some(a))) if a.ttl() > 0 => {}
                            Ok(Err(e)) => return Err(e),
                            _ => return Ok::<(), etcd_client::Error>(()), // lease gone: grant a new one
                        }
                    }
                    r = views.changed() => {
                        if r.is_err() {
                            let _ = client.lease_revoke(lease).await;
                            return Ok(());
                        }
                        let body = serde_json::to_string(&*views.borrow_and_update()).unwrap_or_default();
                        client.put(key.clone(), body, Some(PutOptions::new().with_lease(lease))).await?;
                    }
                }
            }
        };
        let r = run.await;
        if views.has_changed().is_err() {
            return;
        }
        if let Err(e) = r {
            tracing::debug!(error = %e, "publishing health to etcd failed; retrying");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
