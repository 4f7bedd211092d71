//! The organization as the hub sees it: its accounts (names, status) and the OUs each is in,
//! read from AWS Organizations (`ListAccounts`, `ListParents`) — directly in the management or
//! delegated-admin account, or through a read-only role (`ORG_READ_ROLE_ARN`) — and kept per
//! execution environment for [`REFRESH`]. A failed read is logged and the last snapshot (or
//! none) is used: names and OU routes are conveniences, never a reason to drop a notice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long a snapshot of the organization is used before it is read again.
pub const REFRESH: Duration = Duration::from_secs(3600);
/// Time allowed for one read of the organization (a notice does not wait longer for names).
const READ_BUDGET: Duration = Duration::from_secs(5);

/// One account of the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`, …
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub accounts: Vec<Account>,
    /// Account → its OUs, innermost first (only read when some channel is routed by OU).
    pub ous: HashMap<String, Vec<String>>,
}

impl Snapshot {
    pub fn name_of(&self, account_id: &str) -> Option<&str> {
        self.accounts
            .iter()
            .find(|a| a.id == account_id)
            .map(|a| a.name.as_str())
    }

    /// The accounts that should be heard from.
    pub fn active(&self) -> impl Iterator<Item = &Account> {
        self.accounts.iter().filter(|a| a.status == "ACTIVE")
    }
}

/// The Organizations client and the cached snapshot.
pub struct Org {
    client: aws_sdk_organizations::Client,
    with_ous: bool,
    cache: Mutex<Option<(Instant, Arc<Snapshot>)>>,
}

impl Org {
    pub fn new(client: aws_sdk_organizations::Client, with_ous: bool) -> Self {
        Org {
            client,
            with_ous,
            cache: Mutex::new(None),
        }
    }

    /// The organization, read at most once per [`REFRESH`] (the last good snapshot when a read
    /// fails).
    pub async fn snapshot(&self) -> Option<Arc<Snapshot>> {
        let mut cache = self.cache.lock().await;
        if let Some((at, snapshot)) = cache.as_ref() {
            if at.elapsed() < REFRESH {
                return Some(snapshot.clone());
            }
        }
        match tokio::time::timeout(READ_BUDGET, self.read()).await {
            Ok(Ok(snapshot)) => {
                let snapshot = Arc::new(snapshot);
                *cache = Some((Instant::now(), snapshot.clone()));
                Some(snapshot)
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not read the organization; using what is known");
                cache.as_ref().map(|(_, s)| s.clone())
            }
            Err(_) => {
                tracing::warn!("reading the organization took too long; using what is known");
                cache.as_ref().map(|(_, s)| s.clone())
            }
        }
    }

    async fn read(&self) -> Result<Snapshot, String> {
        let mut accounts = Vec::new();
        let mut pages = self.client.list_accounts().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| format!("ListAccounts: {}", crate::aws::error_chain(&e)))?;
            for a in page.accounts() {
                accounts.push(Account {
                    id: a.id().unwrap_or_default().to_string(),
                    name: a.name().unwrap_or_default().to_string(),
                    status: a
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
        }
        let mut ous = HashMap::new();
        if self.with_ous {
            for account in &accounts {
                ous.insert(account.id.clone(), self.ous_of(&account.id).await?);
            }
        }
        Ok(Snapshot { accounts, ous })
    }

    /// The OUs above `child`, innermost first, up to (not including) the root.
    async fn ous_of(&self, child: &str) -> Result<Vec<String>, String> {
        let mut chain = Vec::new();
        let mut current = child.to_string();
        for _ in 0..6 {
            let parents = self
                .client
                .list_parents()
                .child_id(&current)
                .send()
                .await
                .map_err(|e| format!("ListParents: {}", crate::aws::error_chain(&e)))?;
            let Some(parent) = parents.parents().first() else {
                break;
            };
            let id = parent.id().unwrap_or_default().to_string();
            if !id.starts_with("ou-") {
                chain.push(id);
                break;
            }
            chain.push(id.clone());
            current = id;
        }
        Ok(chain)
    }
}
