//! `privwatch admins`: the admin paths privwatch would not report. privwatch knows an admin
//! role by `ADMIN_ROLE_ARNS` / `ADMIN_ROLE_PATTERNS` and an admin permission set by
//! `ADMIN_PERMISSION_SETS`; a role or permission set that grants `AdministratorAccess` (or `*` on
//! `*`) but is named by none of them is a way to admin without a notice. This reads the account's
//! IAM roles and its IAM Identity Center permission sets (read-only calls, the caller's
//! credentials) and says what to add. `make deploy` runs it, and it resolves the permission-set
//! names of `ADMIN_PERMISSION_SETS` to the ARNs the rules match.
//!
//! Roles AWS itself owns (service-linked, path `/aws-service-role/`) are no one's way in and are
//! not listed. Customer-managed policies are read at their default version; permission sets'
//! customer-managed policy references and permissions boundaries are not followed (said in the
//! report).

use crate::aws::error_chain;
use crate::event::pattern::wildcard;
use crate::event::policy::{allows_everything, document, is_administrator_access};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// What the deployment says is admin (the deploy file's settings).
#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub role_arns: Vec<String>,
    pub role_patterns: Vec<String>,
    /// Names or ARNs.
    pub permission_sets: Vec<String>,
}

impl Declared {
    /// From `ADMIN_ROLE_ARNS`, `ADMIN_ROLE_PATTERNS`, `ADMIN_PERMISSION_SETS` (each a list split
    /// by spaces or commas).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let list = |name: &str| -> Vec<String> {
            lookup(name)
                .unwrap_or_default()
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        Declared {
            role_arns: list("ADMIN_ROLE_ARNS"),
            role_patterns: list("ADMIN_ROLE_PATTERNS"),
            permission_sets: list("ADMIN_PERMISSION_SETS"),
        }
    }

    fn covers_role(&self, arn: &str) -> bool {
        self.role_arns.iter().any(|a| a == arn)
            || self.role_patterns.iter().any(|p| wildcard(p, arn))
    }

    fn covers_permission_set(&self, name: &str, arn: &str) -> bool {
        self.permission_sets.iter().any(|p| p == name || p == arn)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    Role,
    PermissionSet,
}

/// A role or permission set that makes its holder admin, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminPath {
    pub kind: PathKind,
    pub name: String,
    pub arn: String,
    pub why: String,
    pub covered: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub paths: Vec<AdminPath>,
    /// The ARNs of `ADMIN_PERMISSION_SETS` (names resolved): what the Identity Center rule
    /// matches.
    pub permission_set_arns: Vec<String>,
    /// What could not be read or resolved.
    pub notes: Vec<String>,
}

impl Report {
    pub fn uncovered(&self) -> impl Iterator<Item = &AdminPath> {
        self.paths.iter().filter(|p| !p.covered)
    }

    /// The report a person reads.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let uncovered: Vec<_> = self.uncovered().collect();
        if uncovered.is_empty() {
            out.push_str("Every admin role and permission set found is one privwatch reports.\n");
        } else {
            out.push_str(
                "Admin paths privwatch does NOT report (their use would go unexplained):\n",
            );
            for p in &uncovered {
                let (what, add) = match p.kind {
                    PathKind::Role => (
                        "role",
                        "ADMIN_ROLE_ARNS (or a pattern in ADMIN_ROLE_PATTERNS)",
                    ),
                    PathKind::PermissionSet => ("permission set", "ADMIN_PERMISSION_SETS"),
                };
                out.push_str(&format!(
                    "  {what} {} ({}): {} — add it to {add}\n",
                    p.name, p.arn, p.why
                ));
            }
        }
        let covered = self.paths.iter().filter(|p| p.covered).count();
        out.push_str(&format!("Covered: {covered} admin path(s).\n"));
        for note in &self.notes {
            out.push_str(&format!("Note: {note}\n"));
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AdminsError(String);

fn failed<E: std::error::Error>(what: &str) -> impl FnOnce(E) -> AdminsError + '_ {
    move |e| AdminsError(format!("{what}: {}", error_chain(&e)))
}

/// Only `ADMIN_PERMISSION_SETS` resolved (`--permission-set-arns`): no IAM read, so a deploy
/// whose credentials may not list roles still gets the ARNs it was given and the names it can
/// resolve.
pub async fn permission_set_arns(sso: &aws_sdk_ssoadmin::Client, declared: &Declared) -> Report {
    let mut report = Report::default();
    permission_sets(sso, declared, &mut report).await;
    report
}

/// Reads the account's roles and permission sets and compares them with `declared`.
pub async fn find(
    iam: &aws_sdk_iam::Client,
    sso: &aws_sdk_ssoadmin::Client,
    declared: &Declared,
) -> Result<Report, AdminsError> {
    let mut report = Report::default();
    roles(iam, declared, &mut report).await?;
    permission_sets(sso, declared, &mut report).await;
    Ok(report)
}

async fn roles(
    iam: &aws_sdk_iam::Client,
    declared: &Declared,
    report: &mut Report,
) -> Result<(), AdminsError> {
    let mut managed: HashMap<String, bool> = HashMap::new();
    let mut pages = iam.list_roles().into_paginator().send();
    let mut roles = Vec::new();
    while let Some(page) = pages.next().await {
        roles.extend(page.map_err(failed("iam:ListRoles"))?.roles);
    }
    for role in roles {
        if role.path.starts_with("/aws-service-role/") {
            continue;
        }
        let name = role.role_name;
        let mut why = None;
        let attached = iam
            .list_attached_role_policies()
            .role_name(&name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(failed("iam:ListAttachedRolePolicies"))?;
        for policy in attached {
            let Some(arn) = policy.policy_arn else {
                continue;
            };
            if is_administrator_access(&arn) {
                why = Some("AdministratorAccess attached".to_string());
                break;
            }
            if arn.contains(":iam::aws:policy/") {
                continue;
            }
            let admin = match managed.get(&arn) {
                Some(admin) => *admin,
                None => {
                    let admin = customer_policy_allows_everything(iam, &arn).await?;
                    managed.insert(arn.clone(), admin);
                    admin
                }
            };
            if admin {
                why = Some(format!("policy {arn} allows * on *"));
                break;
            }
        }
        if why.is_none() {
            let inline = iam
                .list_role_policies()
                .role_name(&name)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(failed("iam:ListRolePolicies"))?;
            for policy in inline {
                let got = iam
                    .get_role_policy()
                    .role_name(&name)
                    .policy_name(&policy)
                    .send()
                    .await
                    .map_err(failed("iam:GetRolePolicy"))?;
                if grants_everything(&got.policy_document) {
                    why = Some(format!("inline policy {policy} allows * on *"));
                    break;
                }
            }
        }
        if let Some(why) = why {
            report.paths.push(AdminPath {
                kind: PathKind::Role,
                covered: declared.covers_role(&role.arn),
                name,
                arn: role.arn,
                why,
            });
        }
    }
    Ok(())
}

async fn customer_policy_allows_everything(
    iam: &aws_sdk_iam::Client,
    arn: &str,
) -> Result<bool, AdminsError> {
    let policy = iam
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .map_err(failed("iam:GetPolicy"))?;
    let Some(version) = policy.policy.and_then(|p| p.default_version_id) else {
        return Ok(false);
    };
    let got = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(version)
        .send()
        .await
        .map_err(failed("iam:GetPolicyVersion"))?;
    Ok(got
        .policy_version
        .and_then(|v| v.document)
        .is_some_and(|d| grants_everything(&d)))
}

/// IAM returns documents URL-encoded.
fn grants_everything(text: &str) -> bool {
    document(&Value::from(text)).is_some_and(|d| allows_everything(&d))
}

/// Identity Center is optional (and readable only in its account and home region): what cannot
/// be read becomes a note, not a failure.
async fn permission_sets(sso: &aws_sdk_ssoadmin::Client, declared: &Declared, report: &mut Report) {
    let mut names: HashMap<String, String> = HashMap::new();
    if let Err(e) = read_permission_sets(sso, declared, report, &mut names).await {
        report.notes.push(format!(
            "IAM Identity Center was not read ({e}); run this with the credentials of its account, in its home region"
        ));
    }
    for wanted in &declared.permission_sets {
        if wanted.starts_with("arn:") {
            report.permission_set_arns.push(wanted.clone());
        } else if let Some(arn) = names.get(wanted) {
            report.permission_set_arns.push(arn.clone());
        } else {
            report.notes.push(format!(
                "ADMIN_PERMISSION_SETS names {wanted:?}, which no permission set read here is called"
            ));
        }
    }
    report.permission_set_arns.sort();
    report.permission_set_arns.dedup();
}

async fn read_permission_sets(
    sso: &aws_sdk_ssoadmin::Client,
    declared: &Declared,
    report: &mut Report,
    names: &mut HashMap<String, String>,
) -> Result<(), AdminsError> {
    let instances = sso
        .list_instances()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(failed("sso:ListInstances"))?;
    for instance in instances {
        let Some(instance_arn) = instance.instance_arn else {
            continue;
        };
        let sets = sso
            .list_permission_sets()
            .instance_arn(&instance_arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(failed("sso:ListPermissionSets"))?;
        for arn in sets {
            let described = sso
                .describe_permission_set()
                .instance_arn(&instance_arn)
                .permission_set_arn(&arn)
                .send()
                .await
                .map_err(failed("sso:DescribePermissionSet"))?;
            let name = described
                .permission_set
                .and_then(|p| p.name)
                .unwrap_or_else(|| arn.clone());
            names.insert(name.clone(), arn.clone());
            let managed = sso
                .list_managed_policies_in_permission_set()
                .instance_arn(&instance_arn)
                .permission_set_arn(&arn)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(failed("sso:ListManagedPoliciesInPermissionSet"))?;
            let mut why = managed
                .iter()
                .any(|p| p.arn.as_deref().is_some_and(is_administrator_access))
                .then(|| "AdministratorAccess attached".to_string());
            if why.is_none() {
                let inline = sso
                    .get_inline_policy_for_permission_set()
                    .instance_arn(&instance_arn)
                    .permission_set_arn(&arn)
                    .send()
                    .await
                    .map_err(failed("sso:GetInlinePolicyForPermissionSet"))?;
                if inline
                    .inline_policy
                    .as_deref()
                    .is_some_and(grants_everything)
                {
                    why = Some("inline policy allows * on *".to_string());
                }
            }
            if let Some(why) = why {
                report.paths.push(AdminPath {
                    kind: PathKind::PermissionSet,
                    covered: declared.covers_permission_set(&name, &arn),
                    name,
                    arn,
                    why,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_lists_split_on_spaces_and_commas_and_match_like_the_rules() {
        let env: HashMap<&str, &str> = [
            (
                "ADMIN_ROLE_ARNS",
                "arn:aws:iam::1:role/A, arn:aws:iam::1:role/B",
            ),
            (
                "ADMIN_ROLE_PATTERNS",
                "*AWSReservedSSO_AdministratorAccess_*",
            ),
            ("ADMIN_PERMISSION_SETS", "AdministratorAccess"),
        ]
        .into();
        let d = Declared::from_lookup(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(d.role_arns.len(), 2);
        assert!(d.covers_role("arn:aws:iam::1:role/B"));
        assert!(d.covers_role(
            "arn:aws:iam::1:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_0123"
        ));
        assert!(!d.covers_role("arn:aws:iam::1:role/Ops"));
        assert!(
            d.covers_permission_set("AdministratorAccess", "arn:aws:sso:::permissionSet/i/ps-1")
        );
        assert!(!d.covers_permission_set("Ops", "arn:aws:sso:::permissionSet/i/ps-2"));
    }
}
