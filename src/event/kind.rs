//! The kinds of privileged use privwatch reports, each one declaration: the EventBridge rules that
//! deliver its records (the same pattern classifies them in the function, see `pattern`), how its
//! person is found, its words in English and Japanese, its severity and what it coalesces with.
//!
//! A new kind is a variant of [`Kind`] and its arm in [`Kind::spec`]; the compiler points at
//! nothing else, because nothing else matches over kinds. `infra/rules.json` is rendered from this
//! table (`make rules`; a unit test fails while it is stale), and `scripts/synth.py` puts those
//! rules into both templates.

use super::policy::{allows_everything, document, is_administrator_access, statements};
use serde_json::{json, Value};

/// Detail types of the records privwatch reads.
pub const SIGN_IN: &str = "AWS Console Sign In via CloudTrail";
pub const API_CALL: &str = "AWS API Call via CloudTrail";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    RootConsoleSignIn,
    RootPassword,
    RootApiCall,
    CentralizedRootSession,
    AdminRoleViaSaml,
    AdminRoleViaAssumeRole,
    AdminRoleViaSwitchRole,
    AdminRoleViaWebIdentity,
    AlarmTampering,
    RootCredentials,
    AdminGranted,
    IdentityCenterAdmin,
    FederationChanged,
    CredentialsForOthers,
    AlarmSwitchedOff,
    TrustOpened,
    IamUserSignIn,
    AdminSession,
}

/// How loud a notice is. `Critical` also mentions the escalation contact in the first reply,
/// instead of waiting for the chase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Notable,
    High,
    Critical,
}

/// What may share a thread: uses of one group, by one principal, in one account, with one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Root,
    CentralizedRoot,
    AdminRole,
    Tampering,
    /// Admin made by other means: a grant, a federation trust, credentials for someone else.
    Grant,
    /// An IAM user's console sign-in (opt-in).
    IamUser,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Root => "root",
            Group::CentralizedRoot => "centralized_root",
            Group::AdminRole => "admin_role",
            Group::Tampering => "tampering",
            Group::Grant => "grant",
            Group::IamUser => "iam_user",
        }
    }
}

/// Where the person behind a record is found (see `detect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Person {
    /// The root user: the account is the identity.
    Root,
    /// A SAML federated user: `userName`, role session name or `principalId`, as an e-mail.
    SamlUser,
    /// Whoever made the call (an assumed role's session, an IAM user, another account's caller).
    Caller,
    /// Console SwitchRole: `additionalEventData.SwitchFrom`, else the new session's name.
    SwitchedFrom,
    /// An OIDC workload (CI): the token's subject; its owner comes from `OIDC_OWNERS`.
    WebIdentity,
}

/// English and Japanese. Placeholders (`{who}`, `{account}`, `{role}`, `{action}`, `{target}`,
/// `{task}`, `{target_account}`, `{subject}`, `{provider}`, `{mention}`) are filled by `wording`
/// with escaped values.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub en: &'static str,
    pub ja: &'static str,
}

/// A kind's words: the notice's headline and summary and the thread's ask, and their forms when
/// the attempt failed (`None`: the same words, with the error appended).
#[derive(Debug, Clone, Copy)]
pub struct Words {
    pub icon: &'static str,
    pub headline: Text,
    pub summary: Text,
    pub ask: Text,
    pub failed: Option<FailedWords>,
}

#[derive(Debug, Clone, Copy)]
pub struct FailedWords {
    pub icon: &'static str,
    pub headline: Text,
    pub summary: Text,
    pub ask: Text,
}

/// What a deployment knows beyond the record, for the kinds that need it: the accounts that are
/// its own (`ACCOUNT_NAMES`; in organization mode, the organization's).
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    pub accounts: &'a [String],
}

/// A template condition a rule can be switched off by (both templates define them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// `WatchRootApiActivity`.
    RootApi,
    /// `WatchAdminAssumeRole`.
    AssumeRole,
    /// `IAM_USER_SIGN_IN=notice` (off by default).
    IamUserSignIn,
    /// `SESSION_ACTIVITY=on` (the default): admin sessions' calls for their activity lines.
    SessionActivity,
}

/// One EventBridge rule of a kind.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Logical name (`<id>Rule` in the templates; `rule` in `fixtures/expected.json`).
    pub id: &'static str,
    /// The rule's name after `${FunctionName}-`.
    pub name: &'static str,
    pub description: &'static str,
    /// The records are `readOnly: true`: only a rule in state
    /// `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS` receives them.
    pub read_only: bool,
    pub switch: Option<Switch>,
    /// Changes by `DEPLOY_ROLE_ARN` (privwatch's own deploys) do not match, when it is set.
    pub spares_deployer: bool,
    /// The event pattern (JSON). Placeholders decided at deploy time: `"$ADMIN_ROLE_ARNS"`,
    /// `"$ADMIN_ROLE_SESSIONS"`, `"$TOKEN_SECRET_IDS"` in place of a matcher list, and
    /// `${FunctionName}` inside a string.
    pub pattern: &'static str,
}

impl Rule {
    pub fn pattern(&self) -> Value {
        serde_json::from_str(self.pattern).expect("kind.rs patterns are valid JSON (tested)")
    }
}

/// Everything about a kind.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub severity: Severity,
    pub group: Group,
    pub person: Person,
    /// The notice names the API action (`eventName`).
    pub shows_action: bool,
    /// The notice names what was acted on (`requestParameters.name`, `functionName`, …).
    pub shows_target: bool,
    /// The notice shows the access key the call issued (`responseElements.credentials`).
    pub shows_issued_key: bool,
    /// Records the rules deliver but that are not this kind after all, and why (`None`: keep).
    pub exception: fn(&Value, Known<'_>) -> Option<&'static str>,
    pub words: Words,
    pub rules: &'static [Rule],
}

impl Kind {
    /// Every kind, in the order records are tried against them (the first match wins).
    pub const ALL: [Kind; 18] = [
        Kind::RootConsoleSignIn,
        Kind::IamUserSignIn,
        Kind::RootPassword,
        Kind::AlarmTampering,
        Kind::AlarmSwitchedOff,
        Kind::FederationChanged,
        Kind::AdminGranted,
        Kind::IdentityCenterAdmin,
        Kind::CredentialsForOthers,
        Kind::TrustOpened,
        Kind::RootCredentials,
        Kind::CentralizedRootSession,
        Kind::AdminRoleViaSaml,
        Kind::AdminRoleViaWebIdentity,
        Kind::AdminRoleViaSwitchRole,
        Kind::AdminRoleViaAssumeRole,
        Kind::RootApiCall,
        Kind::AdminSession,
    ];

    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// The kind a metadata name stands for (`None`: written by a newer or older privwatch).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The declaration of each kind.
    pub fn spec(self) -> &'static Spec {
        match self {
            Kind::RootConsoleSignIn => &Spec {
                name: "root_console_sign_in",
                severity: Severity::High,
                group: Group::Root,
                person: Person::Root,
                shows_action: false,
                shows_target: false,
                shows_issued_key: false,
                exception: no_exception,
                words: Words {
                    icon: ":rotating_light:",
                    headline: Text {
                        en: "Root user signed in to the AWS console",
                        ja: "rootユーザーによるコンソールログイン",
                    },
                    summary: Text {
                        en: "*root* signed in to the console of account *{account}*.",
                        ja: "アカウント *{account}* でrootユーザーがコンソールにログインしました。",
                    },
                    ask: Text {
                        en: "{mention} The *root user* signed in to the console. Whoever did it: please reply in this thread with the purpose of the work and the ticket URL.",
                        ja: "{mention} rootユーザーによるコンソールログインが行われました。このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
                    },
                    failed: Some(FailedWords {
                        icon: ":no_entry:",
                        headline: Text {
                            en: "FAILED root sign-in to the AWS console",
                            ja: "rootユーザーのコンソールログイン失敗",
                        },
                        summary: Text {
                            en: "A sign-in as *root* to account *{account}* failed.",
                            ja: "アカウント *{account}* へのrootログインが失敗しました。",
                        },
                        ask: Text {
                            en: "{mention} Someone tried to sign in to the console as *root* and failed. *Was this you?* If it was, reply in this thread with the purpose of the work and the ticket URL. If nobody here did it, treat it as a security incident.",
                            ja: "{mention} rootユーザーによるコンソールログインが失敗しました。*ご本人の操作ですか?* ご本人の場合は、このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。心当たりがない場合はセキュリティインシデントとして対応してください。",
                        },
                    }),
                },
                rules: &[Rule {
                    id: "RootConsoleSignIn",
                    name: "root-console-sign-in",
                    description: "Root user console sign-in, success or failure.",
                    read_only: false,
                    switch: None,
                    spares_deployer: false,
                    pattern: r#"{"source": ["aws.signin"], "detail-type": ["AWS Console Sign In via CloudTrail"],
                        "detail": {"userIdentity": {"type": ["Root"]}, "eventName": ["ConsoleLogin"]}}"#,
                }],
            },
            Kind::RootPassword => &Spec {
                name: "root_password",
                severity: Severity::Critical,
                group: Group::Root,
                person: Person::Root,
                shows_action: true,
                shows_target: false,
                shows_issued_key: false,
                exception: no_exception,
                words: Words {
                    icon: ":rotating_light:",
                    headline: Text {
                        en: "Root user password changed or recovered",
                        ja: "rootユーザーのパスワード変更・復旧",
                    },
                    summary: Text {
                        en: "`{action}` for the *root user* of account *{account}*: whoever controls the root password controls the account.",
                        ja: "アカウント *{account}* のrootユーザーで `{action}` が行われました。rootのパスワードを握る者がアカウントを握ります。",
                    },
                    ask: Text {
                        en: "{mention} The *root user's password* was changed or recovered. *Was this you?* If it was, reply in this thread with the purpose of the work and the ticket URL. If nobody here did it, treat it as a security incident now.",
                        ja: "{mention} rootユーザーのパスワードが変更・復旧されました。*ご本人の操作ですか?* ご本人の場合は、このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。心当たりがない場合は直ちにセキュリティインシデントとして対応してください。",
                    },
                    failed: None,
                },
                rules: &[Rule {
                    id: "RootPassword",
                    name: "root-password",
                    description: "Root user password changed, recovery requested or completed.",
                    read_only: false,
                    switch: None,
                    spares_deployer: false,
                    pattern: r#"{"source": ["aws.signin"], "detail-type": ["AWS Console Sign In via CloudTrail"],
                        "detail": {"userIdentity": {"type": ["Root"]},
                                   "eventName": ["PasswordUpdated", "PasswordRecoveryRequested", "PasswordRecoveryCompleted"]}}"#,
                }],
            },
            Kind::RootApiCall => &Spec {
                name: "root_api_call",
                severity: Severity::High,
                group: Group::Root,
                person: Person::Root,
                shows_action: true,
                shows_target: false,
                shows_issued_key: false,
                exception: no_exception,
                words: Words {
                    icon: ":rotating_light:",
                    headline: Text {
                        en: "Root user called an AWS API",
                        ja: "rootユーザーによるAPI操作",
                    },
                    summary: Text {
                        en: "*root* called `{action}` in account *{account}*.",
                        ja: "アカウント *{account}* でrootユーザーが `{action}` を実行しました。",
                    },
                    ask: Text {
                        en: "{mention} The *root user* called an AWS API. Whoever did it: please reply in this thread with the purpose of the work and the ticket URL.",
                        ja: "{mention} rootユーザーによるAPI操作が行われました。このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
                    },
                    failed: None,
                },
                rules: &[Rule {
                    id: "RootApiActivity",
                    name: "root-api-activity",
                    description: "API calls that change something, made as the root user.",
                    read_only: false,
                    switch: Some(Switch::RootApi),
                    spares_deployer: false,
                    pattern: r#"{"detail-type": ["AWS API Call via CloudTrail"],
                        "detail": {"userIdentity": {"type": ["Root"]},
                                   "eventName": [{"anything-but": ["CreateAccessKey", "DeactivateMFADevice", "DeleteVirtualMFADevice"]}]}}"#,
                }],
            },
            Kind::AdminSession => &Spec {
                name: "admin_session",
                severity: Severity::High,
                group: Group::AdminRole,
                person: Person::Caller,
                shows_action: true,
                shows_target: false,
                shows_issued_key: false,
                exception: no_exception,
                words: Words {
                    icon: ":bust_in_silhouette:",
                    headline: Text {
                        en: "Admin session seen without its start",
                        ja: "開始を確認できない管理者セッション",
                    },
                    summary: Text {
                        en: "*{who}* is working as the admin role *{role}* in account *{account}* (`{action}`), but privwatch did not see this session begin: it began before privwatch listened, or its start was lost.",
                        ja: "*{who}* がアカウント *{account}* で管理者ロール *{role}* として操作しています（`{action}`）が、privwatch はこのセッションの開始を確認していません（privwatch の導入前に始まったか、開始の記録が失われました）。",
                    },
                    ask: Text {
                        en: "{mention} An *admin session* is at work that privwatch did not see begin. *Is it yours?* Reply in this thread with the purpose of the work and the ticket URL.",
                        ja: "{mention} 開始を確認できない管理者セッションで操作が行われています。*ご本人の操作ですか?* このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
                    },
                    failed: None,
                },
                rules: &[Rule {
                    id: "AdminSessionActivity",
                    name: "admin-session-activity",
                    description: "Calls that change something (readOnly false; the rule's state never delivers read-only ones either), made in an admin role's session: its activity line in the thread of the session's notice.",
                    read_only: false,
                    switch: Some(Switch::SessionActivity),
                    spares_deployer: false,
                    pattern: r#"{"detail-type": ["AWS API Call via CloudTrail"],
                        "detail": {"userIdentity": {"type": ["AssumedRole"], "arn": "$ADMIN_ROLE_SESSIONS"},
                                   "readOnly": [false]}}"#,
                }],
            },
            Kind::CentralizedRootSession => &Spec {
                name: "centralized_root_session",
                severity: Severity::High,
                group: Group::CentralizedRoot,
                person: Person::Caller,
                shows_action: false,
                shows_target: false,
                shows_issued_key: true,
                exception: no_exception,
                words: Words {
                    icon: ":rotating_light:",
                    headline: Text {
                        en: "Root session opened for a member account (AssumeRoot)",
                        ja: "メンバーアカウントのrootセッション開始（AssumeRoot）",
                    },
                    summary: Text {
                        en: "*{who}* opened a *root* session in account *{target_account}* from account *{account}* for the task *{task}*.",
                        ja: "*{who}* がアカウント *{account}* から、アカウント *{target_account}* のrootセッションをタスク *{task}* のために開始しました。",
                    },
                    ask: Text {
                        en: "{mention} You opened a centralized *root* session (AssumeRoot). Please reply in this thread with the purpose of the work and the ticket URL.",
                        ja: "{mention} 一元管理されたrootセッション（AssumeRoot）が開始されました。このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
                    },
                    failed: None,
                },
                rules: &[Rule {
                    id: "CentralizedRootSession",
                    name: "assume-root",
                    description: "sts:AssumeRoot: a root session for a member account (regional STS endpoints only).",
                    read_only: true,
                    switch: None,
                    spares_deployer: false,
                    pattern: r#"{"source": ["aws.sts"], "detail-type": ["AWS API Call via CloudTrail"],
                        "detail": {"eventSource": ["sts.amazonaws.com"], "eventName": ["AssumeRoot"]}}"#,
                }],
            },
            Kind::AdminRoleViaSaml => &Spec {
                name: "admin_role_via_saml",
                severity: Severity::Notable,
                group: Group::AdminRole,
                person: Person::SamlUser,
                shows_action: false,
                shows_target: false,
                shows_issued_key: false,
                exception: no_exception,
                words: Words {
                    icon: ":key:",
                    headline: Text {
                        en: "Admin role assumed via SAML",
                        ja: "SAMLによる管理者ロールの使用",
                    },
                    summary: ROLE_SUMMARY,
                    ask: ROLE_ASK,
                    failed: None,
                },
                rules: &[Rule {
                    id: "AdminRoleViaSaml",
                    name: "admin-role-via-saml",
                    description: "AssumeRoleWithSAML into an admin role (Google Workspace, IAM Identity Center).",
                    read_only: true,
                    switch: None,
                    spares_deployer: false,
                    pattern: r#"{"source": ["aws.sts"], "detail-type": ["AWS API Call via CloudTrail"],
                        "detail": {"eventSource": ["sts.amazonaws.com"], "eventName": ["AssumeRoleWithSAML"],
                                   "requestParameters": {"roleArn": "$ADMIN_ROLE_ARNS"}}}"#,
                }],
            },
            Kind::AdminRoleViaAssumeRole => &Spec {
                name: "admin_role_via_assume_role",
                severity: Severity::Notable,
                group: Group::AdminRole,
                person: Person::Caller,
                shows_action: false,
                shows_target: false,
                shows_issued_key: false,
                exception: no_exception,
                words: Words {
                    icon: ":key:",
                    headline: Text {
                        en: "Admin role assumed via AssumeRole",
                        ja: "AssumeRoleによる管理者ロールの使用",
                    },
                    summary: ROLE_SUMMARY,
                    ask: ROLE_ASK,
                    failed: None,
                },
                rules: &[Rule {
                    id: "AdminRoleViaAssumeRole",
                    name: "admin-role-via-assume-role",
                    description: "sts:AssumeRole into an admin role (role chaining, cross-account).",
                    read_only: true,
                    switch: Some(Switch::AssumeRole),
                    spares_deployer: false,
                    pattern: r#"{"source": ["aws.sts"], "detail-type": ["AWS API Call via CloudTrail"],
                        "detail": {"eventSource": ["sts.amazonaws.com"], "eventName": ["AssumeRole"],
                                   "requestParameters": {"roleArn": "$ADMIN_ROLE_ARNS"}}}"#,
                }],
            },
            Kind::AdminRoleViaSwitchRole => &Spec {
                name: "admin_role_via_switch_role",
                severity: Severity::Notable,
                group: Group::AdminRole,
                person: Person::SwitchedFrom,
                shows_action: false,
                shows_target: false,
                shows_issued_key: false,
                exception: no_exception,
                words: Words {
                    icon: ":key:",
                    headline: Text {
                        en: "Admin role entered with console Switch Role",
                        ja: "コンソールのスイッチロールによる管理者ロールの使用",
                    },
                    summary: Text {
                        en: "*{who}* switched to *{role}* in the console of account *{account}*.",
                        ja: "*{who}* がアカウント *{account}* のコンソールで *{role}* にスイッチしました。",
                    },
                    ask: ROLE_ASK,
                    failed: Some(FailedWords {
                        icon: ":no_entry:",
                        headline: Text {
                            en: "FAILED console Switch Role into an admin role",
                            ja: "管理者ロールへのスイッチロール失敗",
                        },
                        summary: Text {
                            en: "*{who}* tried to switch to *{role}* in the console of account *{account}* and failed.",
                            ja: "*{who}* がアカウント *{account}* のコンソールで *{role}* へのスイッチに失敗しました。",
                        },
                        ask: Text {
                            en: "{mention} A console Switch Role into an *admin role* failed. *Was this you?* If it was, reply in this thread with the purpose of the work and the ticket URL.",
                            ja: "{mention} 管理者ロールへのスイッチロールが失敗しました。*ご本人の操作ですか?* ご本人の場合は、このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
                        },
                    }),
                },
                rules: &[Rule {
                    id: "AdminRoleViaSwitchRole",
                    name: "admin-role-via-switch-role",
                    description: "Console Switch Role into an admin role (the role is only in the new session's ARN).",
                    read_only: false,
                    switch: None,
                    spares_deployer: false,
                    pattern: r#"{"source": ["aws.signin"], "detail-type": ["AWS Console Sign In via CloudTrail"],
                        "detail": {"eventName": ["SwitchRole"], "userIdentity": {"arn": "$ADMIN_ROLE_SESSIONS"}}}"#,
                }],
            },
            Kind::AdminRoleViaWebIdentity => &Spec {
                name: "admin_role_via_web_identity",
                severity: Severity::Notable,
                group: Group::AdminRole,
                person: Person::WebIdentity,
                shows_action: false,
                shows_target: false,
                shows_issued_key: false,
                exception: no_exception,
                words: Words {
                    icon: ":robot_face:",
                    headline: Text {
                        en: "Admin role assumed by a workload via OIDC",
                        ja: "OIDC（CIなど）による管理者ロールの使用",
                    },
                    summary: Text {
                        en: "*{subject}* (via *{provider}*) assumed *{role}* in account *{account}*.",
                        ja: "*{subject}*（*{provider}* 経由）がアカウント *{account}* で *{role}* を使用しました。",
                    },
                    ask: Text {
                        en: "{mention} A CI workload assumed an *admin role*. Its owner: please reply in this thread with the purpose of the work (the run, the change) and the ticket URL.",
                        ja: "{mention} CIなどのワークロードが管理者ロールを使用しました。担当者はこのスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
                    },
                    failed: None,
                },
                rules: &[Rule {
                    id: "AdminRoleViaWebIdentity",
                    name: "admin-role-via-web-identity",
                    description: "AssumeRoleWithWebIdentity into an admin role (CI such as GitHub Actions OIDC).",
                    read_only: true,
                    switch: None,
                    spares_deployer: false,
                    pattern: r#"{"source": ["aws.sts"], "detail-type": ["AWS API Call via CloudTrail"],
                        "detail": {"eventSource": ["sts.amazonaws.com"], "eventName": ["AssumeRoleWithWebIdentity"],
                                   "requestParameters": {"roleArn": "$ADMIN_ROLE_ARNS"}}}"#,
                }],
            },
            Kind::RootCredentials => &Spec {
                name: "root_credentials",
                severity: Severity::Critical,
                group: Group::Root,
                person: Person::Root,
                shows_action: true,
                shows_target: false,
                shows_issued_key: false,
                exception: no_exception,
                words: Words {
                    icon: ":rotating_light:",
                    headline: Text {
                        en: "Root user credentials changed",
                        ja: "rootユーザーの認証情報の変更",
                    },
                    summary: Text {
                        en: "*root* called `{action}` in account *{account}*: an access key made, or an MFA device removed, by the root user (for root itself, or for an IAM user).",
                        ja: "アカウント *{account}* でrootユーザーが `{action}` を実行しました。rootユーザーによるアクセスキーの作成、またはMFAデバイスの削除です（root自身またはIAMユーザーに対して）。",
                    },
                    ask: Text {
                        en: "{mention} The *root user's credentials* were changed (an access key, or its MFA). *Was this you?* If it was, reply in this thread with the purpose of the work and the ticket URL. If nobody here did it, treat it as a security incident now.",
                        ja: "{mention} rootユーザーの認証情報（アクセスキーまたはMFA）が変更されました。*ご本人の操作ですか?* ご本人の場合は、このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。心当たりがない場合は直ちにセキュリティインシデントとして対応してください。",
                    },
                    failed: None,
                },
                rules: &[Rule {
                    id: "RootCredentials",
                    name: "root-credentials",
                    description: "A root access key created, or the root user's MFA removed.",
                    read_only: false,
                    switch: None,
                    spares_deployer: false,
                    pattern: r#"{"detail-type": ["AWS API Call via CloudTrail"],
                        "detail": {"userIdentity": {"type": ["Root"]}, "eventSource": ["iam.amazonaws.com"],
                                   "eventName": ["CreateAccessKey", "DeactivateMFADevice", "DeleteVirtualMFADevice"]}}"#,
                }],
            },
            Kind::AdminGranted => &Spec {
                name: "admin_granted",
                severity: Severity::High,
                group: Group::Grant,
                person: Person::Caller,
                shows_action: true,
                shows_target: true,
                shows_issued_key: false,
                exception: policy_grants_less_than_admin,
                words: Words {
                    icon: ":closed_lock_with_key:",
                    headline: Text {
                        en: "Admin rights granted",
                        ja: "管理者権限の付与",
                    },
                    summary: Text {
                        en: "*{who}* granted *admin rights* to *{target}* (`{action}`) in account *{account}*: an admin made outside the admin roles.",
                        ja: "*{who}* がアカウント *{account}* で *{target}* に管理者権限を付与しました（`{action}`）。管理者ロールの外で管理者が作られました。",
                    },
                    ask: Text {
                        en: "{mention} Someone was *made admin* without going through an admin role. *Was this you?* Reply in this thread with the purpose of the work and the ticket URL.",
                        ja: "{mention} 管理者ロールを経由せずに管理者権限が付与されました。*ご本人の操作ですか?* このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
                    },
                    failed: None,
                },
                rules: &[
                    Rule {
                        id: "AdminGrantedManaged",
                        name: "admin-granted",
                        description: "AdministratorAccess attached to a role, user or group (IAM: recorded in us-east-1).",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["iam.amazonaws.com"],
                                       "eventName": ["AttachRolePolicy", "AttachUserPolicy", "AttachGroupPolicy"],
                                       "requestParameters": {"policyArn": [{"suffix": ":iam::aws:policy/AdministratorAccess"}]}}}"#,
                    },
                    Rule {
                        id: "AdminGrantedInline",
                        name: "admin-granted-inline",
                        description: "An inline policy or a policy version written: the function keeps those that allow every action on every resource.",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["iam.amazonaws.com"],
                                       "eventName": ["PutRolePolicy", "PutUserPolicy", "PutGroupPolicy", "CreatePolicyVersion"]}}"#,
                    },
                ],
            },
            Kind::IdentityCenterAdmin => &Spec {
                name: "identity_center_admin",
                severity: Severity::High,
                group: Group::Grant,
                person: Person::Caller,
                shows_action: true,
                shows_target: true,
                shows_issued_key: false,
                exception: permission_set_policy_short_of_admin,
                words: Words {
                    icon: ":closed_lock_with_key:",
                    headline: Text {
                        en: "Admin granted through IAM Identity Center",
                        ja: "IAM Identity Center での管理者権限の付与",
                    },
                    summary: Text {
                        en: "*{who}* called `{action}` on the permission set *{target}* in account *{account}*: whoever it is assigned to becomes admin in every account it is assigned in.",
                        ja: "*{who}* がアカウント *{account}* で許可セット *{target}* に `{action}` を実行しました。割り当てられた人は、割り当て先のすべてのアカウントで管理者になります。",
                    },
                    ask: Text {
                        en: "{mention} An IAM Identity Center *permission set was made admin, or an admin one assigned*. *Was this you?* Reply in this thread with the purpose of the work and the ticket URL.",
                        ja: "{mention} IAM Identity Center の許可セットが管理者権限になったか、管理者の許可セットが割り当てられました。*ご本人の操作ですか?* このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
                    },
                    failed: None,
                },
                rules: &[
                    Rule {
                        id: "IdentityCenterAdminPolicy",
                        name: "sso-admin-policy",
                        description: "AdministratorAccess attached to an IAM Identity Center permission set (recorded in Identity Center's account and home region).",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.sso"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["sso.amazonaws.com"],
                                       "eventName": ["AttachManagedPolicyToPermissionSet"],
                                       "requestParameters": {"managedPolicyArn": [{"suffix": ":iam::aws:policy/AdministratorAccess"}]}}}"#,
                    },
                    Rule {
                        id: "IdentityCenterInlinePolicy",
                        name: "sso-inline-policy",
                        description: "An inline policy written to a permission set: the function keeps those that allow every action on every resource, or that CloudTrail does not show.",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.sso"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["sso.amazonaws.com"],
                                       "eventName": ["PutInlinePolicyToPermissionSet"]}}"#,
                    },
                    Rule {
                        id: "IdentityCenterAdminAssignment",
                        name: "sso-admin-assignment",
                        description: "An admin permission set (ADMIN_PERMISSION_SETS) assigned to a user or group in an account.",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.sso"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["sso.amazonaws.com"],
                                       "eventName": ["CreateAccountAssignment"],
                                       "requestParameters": {"permissionSetArn": "$ADMIN_PERMISSION_SETS"}}}"#,
                    },
                ],
            },
            Kind::FederationChanged => &Spec {
                name: "federation_changed",
                severity: Severity::Critical,
                group: Group::Grant,
                person: Person::Caller,
                shows_action: true,
                shows_target: true,
                shows_issued_key: false,
                exception: no_exception,
                words: Words {
                    icon: ":sos:",
                    headline: Text {
                        en: "Federation trust changed",
                        ja: "フェデレーションの信頼関係の変更",
                    },
                    summary: Text {
                        en: "*{who}* called `{action}` on *{target}* in account *{account}*: whoever that identity provider vouches for can become the roles that trust it.",
                        ja: "*{who}* がアカウント *{account}* で *{target}* に `{action}` を実行しました。このIDプロバイダーが保証する者は、それを信頼するロールになれます。",
                    },
                    ask: Text {
                        en: "{mention} The account's *trust in an identity provider* (SAML or OIDC) was changed. *Was this you?* Reply in this thread with the purpose of the work and the ticket URL. If nobody here did it, treat it as a security incident now.",
                        ja: "{mention} アカウントのIDプロバイダー（SAMLまたはOIDC）への信頼が変更されました。*ご本人の操作ですか?* このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。心当たりがない場合は直ちにセキュリティインシデントとして対応してください。",
                    },
                    failed: None,
                },
                rules: &[
                    Rule {
                        id: "FederationChanged",
                        name: "federation-changed",
                        description: "A SAML or OIDC identity provider created, changed or deleted (IAM: recorded in us-east-1).",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["iam.amazonaws.com"],
                                       "eventName": ["CreateSAMLProvider", "UpdateSAMLProvider", "DeleteSAMLProvider",
                                                     "CreateOpenIDConnectProvider", "DeleteOpenIDConnectProvider",
                                                     "UpdateOpenIDConnectProviderThumbprint", "AddClientIDToOpenIDConnectProvider"]}}"#,
                    },
                    Rule {
                        id: "FederationIdentitySource",
                        name: "federation-identity-source",
                        description: "IAM Identity Center's identity source changed: its directory, or the external identity provider (SAML) it trusts (recorded in Identity Center's account and home region).",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.sso", "aws.sso-directory"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["sso.amazonaws.com", "sso-directory.amazonaws.com"],
                                       "eventName": ["AssociateDirectory", "DisassociateDirectory",
                                                     "CreateExternalIdPConfigurationForDirectory", "UpdateExternalIdPConfigurationForDirectory",
                                                     "EnableExternalIdPConfigurationForDirectory", "DisableExternalIdPConfigurationForDirectory",
                                                     "DeleteExternalIdPConfigurationForDirectory", "ImportExternalIdPCertificate"]}}"#,
                    },
                ],
            },
            Kind::CredentialsForOthers => &Spec {
                name: "credentials_for_others",
                severity: Severity::High,
                group: Group::Grant,
                person: Person::Caller,
                shows_action: true,
                shows_target: true,
                shows_issued_key: false,
                exception: own_credentials,
                words: Words {
                    icon: ":closed_lock_with_key:",
                    headline: Text {
                        en: "Credentials made for another user",
                        ja: "他のユーザーの認証情報の作成",
                    },
                    summary: Text {
                        en: "*{who}* called `{action}` for the IAM user *{target}* in account *{account}*: whoever holds these credentials acts as that user.",
                        ja: "*{who}* がアカウント *{account}* でIAMユーザー *{target}* に対して `{action}` を実行しました。この認証情報を持つ者は、そのユーザーとして操作できます。",
                    },
                    ask: Text {
                        en: "{mention} A console password or an access key was made for *someone else*. Please reply in this thread with the purpose of the work and the ticket URL.",
                        ja: "{mention} 他のユーザーのコンソールパスワードまたはアクセスキーが作成されました。このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
                    },
                    failed: None,
                },
                rules: &[Rule {
                    id: "CredentialsForOthers",
                    name: "credentials-for-others",
                    description: "A console password or access key made for a named IAM user: the function keeps those made for someone other than the caller.",
                    read_only: false,
                    switch: None,
                    spares_deployer: false,
                    pattern: r#"{"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"],
                        "detail": {"eventSource": ["iam.amazonaws.com"],
                                   "eventName": ["CreateLoginProfile", "UpdateLoginProfile", "CreateAccessKey"],
                                   "userIdentity": {"type": [{"anything-but": "Root"}]},
                                   "requestParameters": {"userName": [{"exists": true}]}}}"#,
                }],
            },
            Kind::AlarmSwitchedOff => &Spec {
                name: "alarm_switched_off",
                severity: Severity::Critical,
                group: Group::Tampering,
                person: Person::Caller,
                shows_action: true,
                shows_target: true,
                shows_issued_key: false,
                exception: keeps_the_alarm_on,
                words: Words {
                    icon: ":sos:",
                    headline: Text {
                        en: "Another alarm was switched off",
                        ja: "別のアラームが停止されました",
                    },
                    summary: Text {
                        en: "*{who}* called `{action}` in account *{account}*: this switches off detection (GuardDuty, AWS Config, Security Hub) or the organization's guardrails.",
                        ja: "*{who}* がアカウント *{account}* で `{action}` を実行しました。検知（GuardDuty、AWS Config、Security Hub）または組織のガードレールを止める操作です。",
                    },
                    ask: Text {
                        en: "{mention} Someone switched off *another alarm* (threat detection, configuration recording, or the organization's guardrails). *Was this you?* Reply in this thread with the purpose of the work and the ticket URL. If nobody here did it, treat it as a security incident now.",
                        ja: "{mention} 別のアラーム（脅威検知、設定の記録、組織のガードレール）が停止されました。*ご本人の操作ですか?* このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。心当たりがない場合は直ちにセキュリティインシデントとして対応してください。",
                    },
                    failed: None,
                },
                rules: &[
                    Rule {
                        id: "AlarmOffGuardDuty",
                        name: "alarm-off-guardduty",
                        description: "GuardDuty deleted, disabled, cut from its administrator, its members dropped, or its findings auto-archived.",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.guardduty"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["guardduty.amazonaws.com"],
                                       "eventName": ["DeleteDetector", "UpdateDetector", "DisassociateFromAdministratorAccount",
                                                     "DisassociateFromMasterAccount", "DeleteMembers", "DisassociateMembers",
                                                     "StopMonitoringMembers", "CreateFilter", "UpdateFilter"]}}"#,
                    },
                    Rule {
                        id: "AlarmOffConfig",
                        name: "alarm-off-config",
                        description: "AWS Config's recorder stopped or deleted, or its delivery channel deleted.",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.config"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["config.amazonaws.com"],
                                       "eventName": ["StopConfigurationRecorder", "DeleteConfigurationRecorder", "DeleteDeliveryChannel"]}}"#,
                    },
                    Rule {
                        id: "AlarmOffSecurityHub",
                        name: "alarm-off-securityhub",
                        description: "Security Hub disabled.",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.securityhub"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["securityhub.amazonaws.com"], "eventName": ["DisableSecurityHub"]}}"#,
                    },
                    Rule {
                        id: "AlarmOffOrganization",
                        name: "alarm-off-organization",
                        description: "An account leaving or removed from the organization, a policy detached or deleted (the record does not say which type), a service's access or delegated administrator removed (recorded in us-east-1).",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.organizations"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["organizations.amazonaws.com"],
                                       "eventName": ["LeaveOrganization", "RemoveAccountFromOrganization", "DetachPolicy", "DeletePolicy",
                                                     "DisablePolicyType", "DisableAWSServiceAccess", "DeregisterDelegatedAdministrator"]}}"#,
                    },
                    Rule {
                        id: "AlarmOffRootAccess",
                        name: "alarm-off-root-access",
                        description: "Centralized root access switched off (IAM: recorded in us-east-1).",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["iam.amazonaws.com"],
                                       "eventName": ["DisableOrganizationsRootCredentialsManagement", "DisableOrganizationsRootSessions"]}}"#,
                    },
                ],
            },
            Kind::TrustOpened => &Spec {
                name: "trust_opened",
                severity: Severity::High,
                group: Group::Grant,
                person: Person::Caller,
                shows_action: true,
                shows_target: true,
                shows_issued_key: false,
                exception: trust_lets_in_no_outsider,
                words: Words {
                    icon: ":closed_lock_with_key:",
                    headline: Text {
                        en: "A role now trusts someone outside",
                        ja: "ロールが外部を信頼するようになりました",
                    },
                    summary: Text {
                        en: "*{who}* called `{action}` on the role *{target}* in account *{account}*: its trust policy lets in an account that is not this one or one privwatch knows, or anyone. Whoever that is can become the role.",
                        ja: "*{who}* がアカウント *{account}* でロール *{target}* に `{action}` を実行しました。信頼ポリシーが、このアカウントでもprivwatchが知るアカウントでもない相手、または誰でもを受け入れます。その相手はこのロールになれます。",
                    },
                    ask: Text {
                        en: "{mention} A role was opened to *someone outside* the accounts privwatch knows. *Was this you?* Reply in this thread with the purpose of the work and the ticket URL.",
                        ja: "{mention} privwatchが知るアカウントの外にロールが開かれました。*ご本人の操作ですか?* このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
                    },
                    failed: None,
                },
                rules: &[Rule {
                    id: "TrustOpened",
                    name: "trust-opened",
                    description: "A role created or its trust policy changed: the function keeps those that let in an outside account or anyone (IAM: recorded in us-east-1).",
                    read_only: false,
                    switch: None,
                    spares_deployer: false,
                    pattern: r#"{"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"],
                        "detail": {"eventSource": ["iam.amazonaws.com"], "eventName": ["UpdateAssumeRolePolicy", "CreateRole"]}}"#,
                }],
            },
            Kind::IamUserSignIn => &Spec {
                name: "iam_user_sign_in",
                severity: Severity::High,
                group: Group::IamUser,
                person: Person::Caller,
                shows_action: false,
                shows_target: false,
                shows_issued_key: false,
                exception: no_exception,
                words: Words {
                    icon: ":door:",
                    headline: Text {
                        en: "IAM user signed in to the AWS console",
                        ja: "IAMユーザーによるコンソールログイン",
                    },
                    summary: Text {
                        en: "*{who}* signed in to the console of account *{account}* as an IAM user: a way in around the identity provider.",
                        ja: "*{who}* がIAMユーザーとしてアカウント *{account}* のコンソールにログインしました。IDプロバイダーを経由しない入口です。",
                    },
                    ask: Text {
                        en: "{mention} Someone signed in as an *IAM user*, not through the identity provider. *Was this you?* Reply in this thread with the purpose of the work and the ticket URL.",
                        ja: "{mention} IDプロバイダーを経由せず、IAMユーザーとしてログインされました。*ご本人の操作ですか?* このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
                    },
                    failed: None,
                },
                rules: &[Rule {
                    id: "IamUserSignIn",
                    name: "iam-user-sign-in",
                    description: "An IAM user's console sign-in (only with IAM_USER_SIGN_IN=notice: people sign in through SAML or IAM Identity Center).",
                    read_only: false,
                    switch: Some(Switch::IamUserSignIn),
                    spares_deployer: false,
                    pattern: r#"{"source": ["aws.signin"], "detail-type": ["AWS Console Sign In via CloudTrail"],
                        "detail": {"eventName": ["ConsoleLogin"], "userIdentity": {"type": ["IAMUser"]}}}"#,
                }],
            },
            Kind::AlarmTampering => &Spec {
                name: "alarm_tampering",
                severity: Severity::Critical,
                group: Group::Tampering,
                person: Person::Caller,
                shows_action: true,
                shows_target: true,
                shows_issued_key: false,
                exception: trail_change_keeps_management_events,
                words: Words {
                    icon: ":sos:",
                    headline: Text {
                        en: "The alarm itself was changed",
                        ja: "アラーム自体が変更されました",
                    },
                    summary: Text {
                        en: "*{who}* called `{action}` on *{target}* in account *{account}*: this can switch off privwatch or the trail it reads.",
                        ja: "*{who}* がアカウント *{account}* で *{target}* に `{action}` を実行しました。privwatchやその入力となる証跡を止め得る操作です。",
                    },
                    ask: Text {
                        en: "{mention} Someone changed the *alarm itself* (the trail, privwatch's rules, function, role or token). *Was this you?* Reply in this thread with the purpose of the work and the ticket URL. If nobody here did it, treat it as a security incident now.",
                        ja: "{mention} アラーム自体（証跡、privwatchのルール・関数・ロール・トークン）が変更されました。*ご本人の操作ですか?* このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。心当たりがない場合は直ちにセキュリティインシデントとして対応してください。",
                    },
                    failed: None,
                },
                rules: &[
                    Rule {
                        id: "AlarmTamperingTrail",
                        name: "alarm-trail",
                        description: "CloudTrail stopped, deleted or narrowed (the records privwatch reads).",
                        read_only: false,
                        switch: None,
                        spares_deployer: false,
                        pattern: r#"{"source": ["aws.cloudtrail"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["cloudtrail.amazonaws.com"],
                                       "eventName": ["StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors"]}}"#,
                    },
                    Rule {
                        id: "AlarmTamperingRules",
                        name: "alarm-rules",
                        description: "privwatch's own EventBridge rules disabled, deleted or rewritten.",
                        read_only: false,
                        switch: None,
                        spares_deployer: true,
                        pattern: r#"{"source": ["aws.events"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["events.amazonaws.com"],
                                       "eventName": ["DisableRule", "DeleteRule", "PutRule"],
                                       "requestParameters": {"name": [{"prefix": "${FunctionName}-"}]}}}"#,
                    },
                    Rule {
                        id: "AlarmTamperingTargets",
                        name: "alarm-targets",
                        description: "Targets removed from or put on privwatch's own rules.",
                        read_only: false,
                        switch: None,
                        spares_deployer: true,
                        pattern: r#"{"source": ["aws.events"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["events.amazonaws.com"],
                                       "eventName": ["RemoveTargets", "PutTargets"],
                                       "requestParameters": {"rule": [{"prefix": "${FunctionName}-"}]}}}"#,
                    },
                    Rule {
                        id: "AlarmTamperingFunction",
                        name: "alarm-function",
                        description: "privwatch's functions (the notifier, the Justify function) changed, throttled or deleted.",
                        read_only: false,
                        switch: None,
                        spares_deployer: true,
                        pattern: r#"{"source": ["aws.lambda"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["lambda.amazonaws.com"],
                                       "eventName": [{"prefix": "UpdateFunctionCode"}, {"prefix": "UpdateFunctionConfiguration"},
                                                     {"prefix": "DeleteFunction"}, {"prefix": "PutFunctionConcurrency"},
                                                     {"prefix": "RemovePermission"}, {"prefix": "PutFunctionEventInvokeConfig"},
                                                     {"prefix": "UpdateFunctionEventInvokeConfig"}],
                                       "requestParameters": {"functionName": ["${FunctionName}", {"suffix": ":function:${FunctionName}"},
                                                                              {"wildcard": "*:function:${FunctionName}:*"},
                                                                              "${FunctionName}-justify", {"suffix": ":function:${FunctionName}-justify"},
                                                                              {"wildcard": "*:function:${FunctionName}-justify:*"}]}}}"#,
                    },
                    Rule {
                        id: "AlarmTamperingRole",
                        name: "alarm-role",
                        description: "privwatch's function role (the notifier's or the hub's) changed or deleted (IAM: recorded in us-east-1).",
                        read_only: false,
                        switch: None,
                        spares_deployer: true,
                        pattern: r#"{"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["iam.amazonaws.com"],
                                       "eventName": ["PutRolePolicy", "DeleteRolePolicy", "AttachRolePolicy", "DetachRolePolicy",
                                                     "UpdateAssumeRolePolicy", "DeleteRole", "PutRolePermissionsBoundary"],
                                       "requestParameters": {"roleName": [{"prefix": "${FunctionName}-notifier-FunctionRole-"},
                                                                          {"prefix": "${FunctionName}-notifier-JustifyRole-"},
                                                                          {"prefix": "${FunctionName}-hub-FunctionRole-"}]}}}"#,
                    },
                    Rule {
                        id: "AlarmTamperingSecret",
                        name: "alarm-secret",
                        description: "privwatch's token secret changed, opened to others or deleted.",
                        read_only: false,
                        switch: None,
                        spares_deployer: true,
                        pattern: r#"{"source": ["aws.secretsmanager"], "detail-type": ["AWS API Call via CloudTrail"],
                            "detail": {"eventSource": ["secretsmanager.amazonaws.com"],
                                       "eventName": ["PutSecretValue", "UpdateSecret", "DeleteSecret", "PutResourcePolicy",
                                                     "DeleteResourcePolicy", "RotateSecret", "UpdateSecretVersionStage"],
                                       "requestParameters": {"secretId": "$TOKEN_SECRET_IDS"}}}"#,
                    },
                ],
            },
        }
    }
}

fn no_exception(_: &Value, _: Known<'_>) -> Option<&'static str> {
    None
}

/// An inline policy or policy version is admin only when it allows every action on every
/// resource. `policyDocument` is recorded as a JSON string, URL-encoded or not (an object is
/// read too).
fn policy_grants_less_than_admin(raw: &Value, _: Known<'_>) -> Option<&'static str> {
    let params = &raw["detail"]["requestParameters"];
    if params["policyArn"]
        .as_str()
        .is_some_and(is_administrator_access)
        && raw["detail"]["eventName"]
            .as_str()
            .is_some_and(|name| name.starts_with("Attach"))
    {
        return None;
    }
    match document(&params["policyDocument"]) {
        Some(document) if allows_everything(&document) => None,
        Some(_) => Some("a policy that grants less than every action on every resource"),
        None => Some("a policy document that could not be read"),
    }
}

/// A permission set's inline policy makes it admin when it allows `*` on `*`. CloudTrail may
/// hide the document (`HIDDEN_DUE_TO_SECURITY_REASONS`, as it does for other Identity Center
/// fields) or leave it out: one that cannot be read is reported, not guessed harmless.
fn permission_set_policy_short_of_admin(raw: &Value, _: Known<'_>) -> Option<&'static str> {
    let detail = &raw["detail"];
    if detail["eventName"] != "PutInlinePolicyToPermissionSet" {
        return None;
    }
    match document(&detail["requestParameters"]["inlinePolicy"]) {
        Some(document) if !allows_everything(&document) => Some(
            "a permission set's inline policy that grants less than every action on every resource",
        ),
        _ => None,
    }
}

/// A trust policy is opened when an `Allow` lets in `*`, or an AWS principal of an account that
/// is neither the record's own nor one the deployment knows. Services and identity providers
/// (`Federated`: a federation change is a kind of its own) open nothing here.
fn trust_lets_in_no_outsider(raw: &Value, known: Known<'_>) -> Option<&'static str> {
    let detail = &raw["detail"];
    let params = &detail["requestParameters"];
    let recorded = match detail["eventName"].as_str() {
        Some("CreateRole") => &params["assumeRolePolicyDocument"],
        _ => &params["policyDocument"],
    };
    let Some(document) = document(recorded) else {
        return Some("a trust policy that could not be read");
    };
    let own = [&raw["account"], &detail["recipientAccountId"]];
    let ours = |account: &str| {
        own.iter().any(|a| a.as_str() == Some(account))
            || known.accounts.iter().any(|k| k == account)
    };
    let outsider = |principal: &str| -> bool {
        if principal == "*" {
            return true;
        }
        let account = match principal.strip_prefix("arn:") {
            // arn:<partition>:iam::<account>:…
            Some(rest) => rest.split(':').nth(3).unwrap_or_default(),
            None => principal,
        };
        !account.is_empty() && !ours(account)
    };
    let opened = statements(&document).iter().any(|s| {
        let principal = &s["Principal"];
        let aws = match &principal["AWS"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        s["Effect"] == "Allow" && (principal == "*" || aws.into_iter().any(outsider))
    });
    (!opened).then_some(
        "a trust policy that lets in only this account, accounts privwatch knows, or services",
    )
}

/// A password or key a user makes for themselves is not one made for someone else.
fn own_credentials(raw: &Value, _: Known<'_>) -> Option<&'static str> {
    let detail = &raw["detail"];
    let target = detail["requestParameters"]["userName"].as_str();
    let own = detail["userIdentity"]["type"] == "IAMUser"
        && target.is_some()
        && detail["userIdentity"]["userName"].as_str() == target;
    own.then_some("a user's own credentials")
}

/// GuardDuty kept on, and a filter that does not archive findings, switch nothing off. An
/// `UpdateDetector` switches something off when it disables the detector, a protection plan
/// (`features[].status`) or a data source (`dataSources…enable`); an `UpdateFilter` that does
/// not name its action keeps the filter's own, which may be `ARCHIVE` (so it is reported).
fn keeps_the_alarm_on(raw: &Value, _: Known<'_>) -> Option<&'static str> {
    let detail = &raw["detail"];
    let params = &detail["requestParameters"];
    match detail["eventName"].as_str() {
        Some("UpdateDetector") => {
            let disables_a_feature = params["features"]
                .as_array()
                .is_some_and(|features| features.iter().any(|f| f["status"] == "DISABLED"));
            let off = params["enable"] == Value::Bool(false)
                || disables_a_feature
                || disables_anything(&params["dataSources"]);
            (!off).then_some("an UpdateDetector that keeps GuardDuty and its protections on")
        }
        Some("CreateFilter") if params["action"] != "ARCHIVE" => {
            Some("a GuardDuty filter that does not archive findings")
        }
        Some("UpdateFilter") if params["action"].is_string() && params["action"] != "ARCHIVE" => {
            Some("a GuardDuty filter that does not archive findings")
        }
        _ => None,
    }
}

/// Some `"enable": false` anywhere in a GuardDuty `dataSources` value.
fn disables_anything(value: &Value) -> bool {
    match value {
        Value::Object(fields) => fields
            .iter()
            .any(|(k, v)| (k == "enable" && *v == Value::Bool(false)) || disables_anything(v)),
        Value::Array(items) => items.iter().any(disables_anything),
        _ => false,
    }
}

/// `UpdateTrail` and `PutEventSelectors` are tampering only when they narrow what the trail
/// records: management events no longer all recorded, or global and other regions' events lost.
fn trail_change_keeps_management_events(raw: &Value, _: Known<'_>) -> Option<&'static str> {
    let detail = &raw["detail"];
    let params = &detail["requestParameters"];
    let keeps = match detail["eventName"].as_str() {
        Some("UpdateTrail") => {
            params["isMultiRegionTrail"] != Value::Bool(false)
                && params["includeGlobalServiceEvents"] != Value::Bool(false)
        }
        Some("PutEventSelectors") => {
            let basic_keeps = params["eventSelectors"]
                .as_array()
                .is_some_and(|selectors| {
                    selectors.iter().any(|s| {
                        s["includeManagementEvents"] != Value::Bool(false)
                            && matches!(s["readWriteType"].as_str(), None | Some("All"))
                    })
                });
            let advanced_keeps =
                params["advancedEventSelectors"]
                    .as_array()
                    .is_some_and(|selectors| {
                        selectors.iter().any(|s| {
                            let fields =
                                s["fieldSelectors"].as_array().cloned().unwrap_or_default();
                            let management = fields.iter().any(|f| {
                                f["field"] == "eventCategory"
                                    && f["equals"]
                                        .as_array()
                                        .is_some_and(|v| v.iter().any(|x| x == "Management"))
                            });
                            let narrowed = fields
                                .iter()
                                .any(|f| f["field"] == "readOnly" || f["field"] == "eventSource");
                            management && !narrowed
                        })
                    });
            basic_keeps || advanced_keeps
        }
        _ => false,
    };
    keeps.then_some("a trail change that keeps recording every management event")
}

const ROLE_SUMMARY: Text = Text {
    en: "*{who}* assumed *{role}* in account *{account}*.",
    ja: "*{who}* がアカウント *{account}* で *{role}* を使用しました。",
};
const ROLE_ASK: Text = Text {
    en: "{mention} You are using an *admin role*. Please reply in this thread with the purpose of the work and the ticket URL.",
    ja: "{mention} 管理者ロールが使用されました。このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。",
};

/// The rules of every kind as `infra/rules.json` holds them (what `scripts/synth.py` renders into
/// the templates).
pub fn rules_document() -> Value {
    let rules: Vec<Value> = Kind::ALL
        .into_iter()
        .flat_map(|kind| {
            kind.spec().rules.iter().map(move |rule| {
                json!({
                    "kind": kind.as_str(),
                    "id": rule.id,
                    "name": rule.name,
                    "description": rule.description,
                    "state": if rule.read_only { "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" } else { "ENABLED" },
                    "switch": rule.switch.map(|s| match s {
                        Switch::RootApi => "WatchRootApi",
                        Switch::AssumeRole => "WatchAssumeRole",
                        Switch::IamUserSignIn => "WatchIamUserSignIn",
                        Switch::SessionActivity => "WatchSessionActivity",
                    }),
                    "spares_deployer": rule.spares_deployer,
                    "pattern": rule.pattern(),
                })
            })
        })
        .collect();
    json!({
        "_comment": "Generated from src/kind.rs by `make rules`; do not edit. scripts/synth.py renders these rules into infra/notifier.yaml and infra/forwarder.yaml.",
        "rules": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_with_a_unique_name_and_valid_rules() {
        let mut names = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        let mut rule_names = std::collections::HashSet::new();
        for kind in Kind::ALL {
            assert!(names.insert(kind.as_str()), "{kind:?} twice");
            assert_eq!(Kind::from_name(kind.as_str()), Some(kind));
            assert!(!kind.spec().rules.is_empty(), "{kind:?} has no rule");
            for rule in kind.spec().rules {
                assert!(
                    ids.insert(rule.id) && rule_names.insert(rule.name),
                    "{}",
                    rule.id
                );
                let pattern = rule.pattern();
                assert!(pattern["detail-type"].is_array(), "{}", rule.id);
                // Rule names must fit EventBridge's 64 characters after the function name.
                assert!(rule.name.len() <= 30, "{}", rule.name);
            }
        }
        assert_eq!(Kind::from_name("something_newer"), None);
    }

    #[test]
    fn a_permission_set_inline_policy_is_kept_unless_it_is_readably_short_of_admin() {
        let put = |policy: Value| {
            json!({"detail": {"eventName": "PutInlinePolicyToPermissionSet",
                "requestParameters": {"permissionSetArn": "arn:aws:sso:::permissionSet/i/ps-1", "inlinePolicy": policy}}})
        };
        let admin = json!(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#);
        let narrow =
            json!(r#"{"Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}]}"#);
        let known = Known::default();
        assert_eq!(
            permission_set_policy_short_of_admin(&put(admin), known),
            None
        );
        assert!(permission_set_policy_short_of_admin(&put(narrow), known).is_some());
        // CloudTrail may hide it: what cannot be read is reported.
        for hidden in [json!("HIDDEN_DUE_TO_SECURITY_REASONS"), Value::Null] {
            assert_eq!(
                permission_set_policy_short_of_admin(&put(hidden), known),
                None
            );
        }
        // An attachment and an assignment are the rules' decision.
        let attach = json!({"detail": {"eventName": "AttachManagedPolicyToPermissionSet"}});
        assert_eq!(permission_set_policy_short_of_admin(&attach, known), None);
    }

    fn call(name: &str, identity: Value, params: Value) -> Value {
        json!({"detail": {"eventName": name, "userIdentity": identity, "requestParameters": params}})
    }

    /// `*` on `*` is admin, whether the document is recorded as an object, a JSON string or a
    /// URL-encoded one; less is not, and neither is a document that cannot be read.
    #[test]
    fn an_inline_policy_is_admin_only_when_it_allows_everything() {
        let admin = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let read_only = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:Get*"],"Resource":"*"}}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22*%22%5D%2C%22Resource%22%3A%5B%22*%22%5D%7D%5D%7D";
        let user = json!({"type": "IAMUser", "userName": "alice"});
        for (document, admin_expected) in [
            (json!(admin), true),
            (json!(encoded), true),
            (serde_json::from_str::<Value>(admin).unwrap(), true),
            (json!(read_only), false),
            (json!("not a policy"), false),
        ] {
            let raw = call(
                "PutUserPolicy",
                user.clone(),
                json!({"userName": "bob", "policyName": "p", "policyDocument": document}),
            );
            assert_eq!(
                policy_grants_less_than_admin(&raw, Known::default()).is_none(),
                admin_expected,
                "{raw}"
            );
        }
        let deny = r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
        let raw = call(
            "CreatePolicyVersion",
            user.clone(),
            json!({"policyArn": "arn:aws:iam::1:policy/p", "policyDocument": deny}),
        );
        assert!(policy_grants_less_than_admin(&raw, Known::default()).is_some());
        let attach = call(
            "AttachRolePolicy",
            user,
            json!({"roleName": "r", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        );
        assert_eq!(
            policy_grants_less_than_admin(&attach, Known::default()),
            None
        );
    }

    #[test]
    fn credentials_a_user_makes_for_themselves_are_not_for_someone_else() {
        let alice = json!({"type": "IAMUser", "userName": "alice"});
        let role = json!({"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"userName": "alice"}}});
        let own = |who: &Value, name: &str, user: &str| {
            own_credentials(
                &call(name, who.clone(), json!({"userName": user})),
                Known::default(),
            )
        };
        assert!(own(&alice, "CreateAccessKey", "alice").is_some());
        assert_eq!(own(&alice, "CreateAccessKey", "bob"), None);
        assert_eq!(own(&role, "CreateLoginProfile", "alice"), None);
    }

    #[test]
    fn guardduty_kept_on_and_filters_that_do_not_archive_switch_nothing_off() {
        let who = json!({"type": "IAMUser", "userName": "alice"});
        let kept = call(
            "UpdateDetector",
            who.clone(),
            json!({"detectorId": "d", "enable": true}),
        );
        let off = call(
            "UpdateDetector",
            who.clone(),
            json!({"detectorId": "d", "enable": false}),
        );
        let noop = call(
            "CreateFilter",
            who.clone(),
            json!({"name": "f", "action": "NOOP"}),
        );
        let archive = call(
            "UpdateFilter",
            who.clone(),
            json!({"filterName": "f", "action": "ARCHIVE"}),
        );
        let delete = call("DeleteDetector", who, json!({"detectorId": "d"}));
        assert!(keeps_the_alarm_on(&kept, Known::default()).is_some());
        assert!(keeps_the_alarm_on(&noop, Known::default()).is_some());
        assert_eq!(keeps_the_alarm_on(&off, Known::default()), None);
        assert_eq!(keeps_the_alarm_on(&archive, Known::default()), None);
        assert_eq!(keeps_the_alarm_on(&delete, Known::default()), None);
        let plan_off = call(
            "UpdateDetector",
            json!({}),
            json!({"detectorId": "d",
            "features": [{"name": "S3_DATA_EVENTS", "status": "DISABLED"}]}),
        );
        let source_off = call(
            "UpdateDetector",
            json!({}),
            json!({"detectorId": "d",
            "dataSources": {"s3Logs": {"enable": false}}}),
        );
        let widened = call(
            "UpdateFilter",
            json!({}),
            json!({"filterName": "f", "findingCriteria": {}}),
        );
        assert_eq!(keeps_the_alarm_on(&plan_off, Known::default()), None);
        assert_eq!(keeps_the_alarm_on(&source_off, Known::default()), None);
        assert_eq!(keeps_the_alarm_on(&widened, Known::default()), None);
    }

    #[test]
    fn a_trust_is_opened_only_by_an_outside_account_or_anyone() {
        let trust = |principal: Value| {
            let document = json!({"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]});
            json!({"account": "111122223333", "detail": {"eventName": "UpdateAssumeRolePolicy",
                   "recipientAccountId": "111122223333",
                   "requestParameters": {"roleName": "r", "policyDocument": document.to_string()}}})
        };
        let known = vec!["444455556666".to_string()];
        let known = Known { accounts: &known };
        let opened = |p: Value| trust_lets_in_no_outsider(&trust(p), known).is_none();
        assert!(opened(json!({"AWS": "arn:aws:iam::193672423079:root"})));
        assert!(opened(
            json!({"AWS": ["arn:aws:iam::111122223333:root", "999999999999"]})
        ));
        assert!(opened(json!({"AWS": "*"})));
        assert!(opened(json!("*")));
        assert!(!opened(json!({"AWS": "arn:aws:iam::111122223333:role/ci"})));
        assert!(!opened(json!({"AWS": "444455556666"})));
        assert!(!opened(json!({"Service": "ec2.amazonaws.com"})));
        assert!(!opened(
            json!({"Federated": "arn:aws:iam::111122223333:saml-provider/Google"})
        ));
        let create = json!({"account": "111122223333", "detail": {"eventName": "CreateRole",
            "requestParameters": {"roleName": "r", "assumeRolePolicyDocument":
                r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::193672423079:root"},"Action":"sts:AssumeRole"}}"#}}});
        assert_eq!(trust_lets_in_no_outsider(&create, known), None);
    }

    /// `infra/rules.json` is what the table renders; `make rules` rewrites it.
    #[test]
    fn infra_rules_json_is_rendered_from_this_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/infra/rules.json");
        let rendered = serde_json::to_string_pretty(&rules_document()).unwrap() + "\n";
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == rendered,
            "infra/rules.json is stale: run `make rules` after changing src/kind.rs"
        );
    }
}
