//! What privwatch says, in English and Japanese, apart from how Slack shows it: the headline,
//! summary and ask of each kind (declared in `kind`), field labels, and the lines of the chase.
//! Texts use mrkdwn emphasis (`*bold*`, `` `code` ``) but no Block Kit; every value from the
//! record goes in through `mrkdwn::field`.

use crate::event::kind::{Severity, Text};
use crate::event::PrivilegedUse;
use crate::message::metadata::ActivityPayload;
use crate::message::mrkdwn::{date, field};

/// Where a notice's uses are told: each on its own thread line (without the archive), or summed
/// up by the rolling summary line with every event in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    EveryLine,
    Summed,
}

/// A long series of uses by one person, as its rolling summary line tells it. Each tally is
/// (value, how many), the most frequent first; an empty value counts the others.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub count: u32,
    pub lines: u32,
    pub first: i64,
    pub last: i64,
    pub kinds: &'a [(String, u32)],
    pub source_ips: &'a [(String, u32)],
    pub user_agents: &'a [(String, u32)],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Ja,
}

impl Lang {
    pub fn pick(self, text: Text) -> &'static str {
        match self {
            Lang::En => text.en,
            Lang::Ja => text.ja,
        }
    }

    fn t<'a>(self, en: &'a str, ja: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Ja => ja,
        }
    }
}

/// How a spoke is heard, as the coverage table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Yes,
    NotYet,
    Silent,
}

/// What fell silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// Nothing arrives: the spoke, its rules or the way to the hub is gone.
    Everything,
    /// The heartbeat arrives, the canary's CloudTrail record does not: CloudTrail stopped,
    /// narrowed or not delivering, or the canary's schedule gone.
    Trail,
    /// The canary's record arrives, the heartbeat does not: the heartbeat rule is gone.
    Schedule,
}

/// The words of the Justify modal.
#[derive(Debug, Clone, Copy)]
pub struct Modal {
    pub title: &'static str,
    pub submit: &'static str,
    pub close: &'static str,
    pub purpose: &'static str,
    pub ticket: &'static str,
    pub hint: &'static str,
    pub purpose_missing: &'static str,
    pub ticket_invalid: &'static str,
}

/// Settings the wording depends on (from `Config`).
#[derive(Debug, Clone, Default)]
pub struct Wording {
    pub lang: Lang,
    /// `ACCOUNT_NAME`: the name of an account `account_names` does not list.
    pub account_name: Option<String>,
    /// `ACCOUNT_NAMES` (`111122223333=prod,444455556666=dev`): where one channel hears from
    /// several accounts, each by its own name.
    pub account_names: Vec<(String, String)>,
    /// `JUSTIFY_BUTTON`: notices carry a *Justify* button (the Function URL is set up).
    pub justify_button: bool,
    /// Also mentioned in the first reply of a critical kind (`ESCALATION_MENTION`): tampering
    /// with the alarm does not wait for the chase.
    pub critical_mention: Option<String>,
}

/// The labels of a notice's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Account,
    Identity,
    Role,
    PermissionSet,
    Action,
    Target,
    TargetAccount,
    Task,
    Provider,
    SwitchedFrom,
    OtherAccount,
    SessionKey,
    SourceIp,
    Region,
    Time,
    UserAgent,
    Error,
    OpenInCloudTrail,
    CloudTrailEvent,
    Event,
}

impl Wording {
    pub fn label(&self, label: Label) -> &'static str {
        let l = self.lang;
        match label {
            Label::Account => l.t("Account", "アカウント"),
            Label::Identity => l.t("Identity", "ID"),
            Label::Role => l.t("Role", "ロール"),
            Label::PermissionSet => l.t("Permission set", "許可セット"),
            Label::Action => l.t("Action", "操作"),
            Label::Target => l.t("Target", "対象"),
            Label::TargetAccount => l.t("Member account", "対象アカウント"),
            Label::Task => l.t("Task", "タスク"),
            Label::Provider => l.t("OIDC provider", "OIDCプロバイダー"),
            Label::SwitchedFrom => l.t("Switched from", "スイッチ元"),
            Label::OtherAccount => l.t("Other account", "相手側アカウント"),
            Label::SessionKey => l.t("Session key", "セッションキー"),
            Label::SourceIp => l.t("Source IP", "送信元IP"),
            Label::Region => l.t("Region", "リージョン"),
            Label::Time => l.t("Time", "日時"),
            Label::UserAgent => l.t("User agent", "ユーザーエージェント"),
            Label::Error => l.t("Error", "エラー"),
            Label::OpenInCloudTrail => l.t("Open in CloudTrail", "CloudTrailで開く"),
            Label::CloudTrailEvent => l.t("CloudTrail event", "CloudTrailイベント"),
            Label::Event => l.t("event", "イベント"),
        }
    }

    pub fn justify_label(&self) -> &'static str {
        self.lang.t("Justify", "理由を記入")
    }

    pub fn mfa(&self, used: bool) -> &'static str {
        match (used, self.lang) {
            (true, Lang::En) => "yes",
            (false, Lang::En) => ":warning: no",
            (true, Lang::Ja) => "あり",
            (false, Lang::Ja) => ":warning: なし",
        }
    }

    /// The account as shown: `111122223333 (prod)`.
    pub fn account(&self, account_id: &str) -> String {
        let listed = self
            .account_names
            .iter()
            .find(|(id, _)| id == account_id)
            .map(|(_, name)| name.as_str());
        match listed.or(self.account_name.as_deref()) {
            Some(name) if !name.is_empty() => format!("{} ({})", field(account_id), field(name)),
            _ => field(account_id),
        }
    }

    /// Icon and headline (plain text: Block Kit headers are `plain_text`).
    pub fn headline(&self, u: &PrivilegedUse) -> String {
        let words = &u.kind.spec().words;
        let (icon, text) = match (&words.failed, u.failed()) {
            (Some(failed), true) => (failed.icon, failed.headline),
            (Some(_) | None, _) => (words.icon, words.headline),
        };
        format!("{icon} {}", self.lang.pick(text))
    }

    /// One or two sentences: who did what, where; the error if it failed.
    pub fn summary(&self, u: &PrivilegedUse) -> String {
        let words = &u.kind.spec().words;
        let template = match (&words.failed, u.failed()) {
            (Some(failed), true) => failed.summary,
            (Some(_) | None, _) => words.summary,
        };
        let mut text = self.fill(self.lang.pick(template), u, "");
        if u.centralized_root {
            text.push_str(self.lang.t(
                "\nMade with temporary root credentials outside the console: a *centralized root session* (AssumeRoot from the management account). Who opened it is in that account's AssumeRoot notice with the same session key.",
                "\nコンソール外の一時的なroot認証情報による操作です。*一元管理されたrootセッション*（管理アカウントからのAssumeRoot）と考えられます。開始した人は、同じセッションキーを持つ管理アカウントのAssumeRoot通知にあります。",
            ));
        }
        if let Some(reason) = &u.failure {
            text.push_str(&format!(
                "\n{}: {}",
                self.label(Label::Error),
                field(reason)
            ));
        }
        text
    }

    /// The thread's first reply: the person (or fallback), asked for the purpose and the ticket.
    pub fn ask(&self, u: &PrivilegedUse, mention: &str) -> String {
        let spec = u.kind.spec();
        let template = match (&spec.words.failed, u.failed()) {
            (Some(failed), true) => failed.ask,
            (Some(_) | None, _) => spec.words.ask,
        };
        let mention = match (&self.critical_mention, spec.severity) {
            (Some(extra), Severity::Critical) if extra != mention => format!("{mention} {extra}"),
            (Some(_) | None, _) => mention.to_string(),
        };
        self.fill(self.lang.pick(template), u, &mention)
    }

    /// What a coalesced line names: the action for kinds that show one, else the headline.
    pub fn repeat(&self, u: &PrivilegedUse, time: &str) -> String {
        let what = match (&u.event_name, u.kind.spec().shows_action) {
            (Some(name), true) => format!("`{}`", field(name)),
            (Some(_) | None, _) => self.headline(u),
        };
        let from = u
            .source_ip
            .as_deref()
            .map(|ip| format!(" {} {}", self.lang.t("from", "送信元"), field(ip)))
            .unwrap_or_default();
        format!(
            "{} {time}: {what}{from} ({} `{}`)",
            self.lang.t("Again", "再度"),
            self.lang.t("event", "イベント"),
            field(&u.event_id)
        )
    }

    /// The rolling summary line of a long series: everything so far in one line, rewritten as
    /// the series grows (the first `series.lines` uses have their own lines above it).
    pub fn rolling(&self, series: &Series<'_>) -> String {
        let list = |tally: &[(String, u32)], code: bool| -> String {
            let parts: Vec<String> = tally
                .iter()
                .map(|(value, n)| match (value.is_empty(), code) {
                    (true, _) => format!("{} ×{n}", self.lang.t("others", "その他")),
                    (false, true) => format!("`{}` ×{n}", field(value)),
                    (false, false) => format!("{} ×{n}", field(value)),
                })
                .collect();
            match parts.is_empty() {
                true => "—".to_string(),
                false => parts.join(", "),
            }
        };
        let (first, last) = (date(series.first), date(series.last));
        let (count, lines) = (series.count, series.lines);
        let (kinds, ips, agents) = (
            list(series.kinds, true),
            list(series.source_ips, false),
            list(series.user_agents, true),
        );
        let above = match (self.lang, lines) {
            (Lang::En, 1) => "the first is the one asked about above".to_string(),
            (Lang::En, n) => format!("the first {n} have their own lines above"),
            (Lang::Ja, n) => format!("最初の {n} 回は上に個別の行があります"),
        };
        match self.lang {
            Lang::En => format!(
                ":bar_chart: *{count} uses in all* so far, {first} to {last} ({above}; this line keeps up with the rest) · calls: {kinds} · from: {ips} · user agents: {agents}"
            ),
            Lang::Ja => format!(
                ":bar_chart: これまでに *合計 {count} 回*（{first} 〜 {last}。{above}。以降はこの行が更新されます）· 呼び出し: {kinds} · 送信元: {ips} · ユーザーエージェント: {agents}"
            ),
        }
    }

    /// How many uses a notice stands for, over which range, and where each one is.
    pub fn count(&self, count: u32, first: i64, last: i64, shown: Shown) -> String {
        let (first, last) = (date(first), date(last));
        match (self.lang, shown) {
            (Lang::En, Shown::EveryLine) => format!(
                "Used *{count}* times between {first} and {last}; every event is in the thread."
            ),
            (Lang::En, Shown::Summed) => format!(
                "Used *{count}* times between {first} and {last}; the thread sums them up, and the archive keeps every event (`privwatch audit`)."
            ),
            (Lang::Ja, Shown::EveryLine) => format!(
                "{count} 回の使用（{first} 〜 {last}）。各イベントはスレッドにあります。"
            ),
            (Lang::Ja, Shown::Summed) => format!(
                "{count} 回の使用（{first} 〜 {last}）。スレッドに要約があり、すべてのイベントはアーカイブにあります（`privwatch audit`）。"
            ),
        }
    }

    /// The other account's record of the same cross-account call joined this notice.
    pub fn twin(&self, account_id: &str, event_id: &str) -> String {
        match self.lang {
            Lang::En => format!(
                "The same call is also recorded in account *{}* (event `{}`).",
                field(account_id),
                field(event_id)
            ),
            Lang::Ja => format!(
                "同じ呼び出しはアカウント *{}* にも記録されています（イベント `{}`）。",
                field(account_id),
                field(event_id)
            ),
        }
    }

    /// To a person whose answer lacks the ticket URL (or the purpose).
    pub fn ask_missing(
        &self,
        mention: &str,
        missing: crate::message::justification::Missing,
    ) -> String {
        use crate::message::justification::Missing;
        match (self.lang, missing) {
            (Lang::En, Missing::TicketUrl) => format!(
                "{mention} Thanks. Please add the ticket URL: an answer counts once it has the purpose of the work and the link to its ticket."
            ),
            (Lang::En, Missing::Purpose) => format!(
                "{mention} Thanks. Please add the purpose of the work in a sentence: an answer counts once it has the purpose and the ticket URL."
            ),
            (Lang::Ja, Missing::TicketUrl) => format!(
                "{mention} ありがとうございます。「タスクチケットURL」を追記してください。「作業目的や内容」とチケットのリンクがそろって記入完了となります。"
            ),
            (Lang::Ja, Missing::Purpose) => format!(
                "{mention} ありがとうございます。「作業目的や内容」を追記してください。目的と「タスクチケットURL」がそろって記入完了となります。"
            ),
        }
    }

    /// The person, asked by the sweep: Slack could not be asked who they were when the notice
    /// was posted, so the first reply went to the fallback.
    pub fn late_ask(&self, mention: &str) -> String {
        match self.lang {
            Lang::En => format!(
                "{mention} privwatch could not find you in Slack when this was posted, so it asks you now: \
                 *was this you?* Reply in this thread with the purpose of the work and the ticket URL."
            ),
            Lang::Ja => format!(
                "{mention} 投稿時にSlackでご本人を確認できなかったため、改めてお尋ねします。*ご本人の操作ですか?* \
                 このスレッドに「作業目的や内容」と「タスクチケットURL」を記入してください。"
            ),
        }
    }

    /// The test notice of `make smoke`: it asks no one and is never chased.
    pub fn smoke(&self, account_id: &str) -> String {
        let account = self.account(account_id);
        match self.lang {
            Lang::En => format!(
                ":test_tube: *privwatch smoke test* (account {account}): an event went from EventBridge \
                 through the function to this channel, so the path works. No one is asked, and this is never chased."
            ),
            Lang::Ja => format!(
                ":test_tube: *privwatch 動作確認* (アカウント {account}): EventBridgeから関数を経てこのチャンネルまでイベントが届きました。\
                 経路は正常です。どなたにも記入は求めず、催促もしません。"
            ),
        }
    }

    /// The chase: one reply in an unanswered thread.
    pub fn escalation(&self, mention: &str, minutes: u64) -> String {
        match self.lang {
            Lang::En => format!(
                "{mention} Nobody has explained this privileged use in {minutes} minutes. Please find out \
                 who it was and have them reply here with the purpose of the work and the ticket URL."
            ),
            Lang::Ja => format!(
                "{mention} {minutes}分経っても、この特権利用の「作業目的や内容」「タスクチケットURL」が記入されていません。\
                 利用者を確認し、このスレッドに記入してもらってください。"
            ),
        }
    }

    /// An admin session's activity line: its write calls by action, the resources they named,
    /// the calls refused or failed, first and last time. Every value is from CloudTrail: escaped,
    /// and kept out of the code spans' backticks.
    pub fn activity_line(&self, a: &ActivityPayload) -> String {
        let code = |v: &str| format!("`{}`", field(v).replace('`', "'"));
        let mut actions: Vec<String> = a
            .actions
            .iter()
            .map(|x| format!("{} ×{}", code(&x.action), x.count))
            .collect();
        if a.other_actions > 0 {
            actions.push(format!(
                "{} ×{}",
                self.lang.t("others", "その他"),
                a.other_actions
            ));
        }
        let mut resources: Vec<String> = a.resources.iter().map(|r| code(&r.name)).collect();
        if a.more_resources {
            resources.push("…".to_string());
        }
        let mut outcome = Vec::new();
        if a.refused > 0 {
            outcome.push(format!("{} ×{}", self.lang.t("refused", "拒否"), a.refused));
        }
        if a.failed > 0 {
            outcome.push(format!("{} ×{}", self.lang.t("failed", "失敗"), a.failed));
        }
        let (first, last) = (date(a.first), date(a.last));
        let total = a.total;
        match self.lang {
            Lang::En => {
                let calls = match total {
                    1 => "1 write call".to_string(),
                    n => format!("{n} write calls"),
                };
                let mut text = format!(
                    ":memo: *What this session did* ({calls}, kept current): {}",
                    actions.join(" · ")
                );
                if !resources.is_empty() {
                    text.push_str(&format!("\n*Resources:* {}", resources.join(", ")));
                }
                if !outcome.is_empty() {
                    text.push_str(&format!("\n*Not done:* {}", outcome.join(" · ")));
                }
                text.push_str(&format!(
                    "\nFirst {first}, last {last}. Read-only calls are not listed."
                ));
                text
            }
            Lang::Ja => {
                let mut text = format!(
                    ":memo: *このセッションの操作*（書き込み {total} 件、随時更新）: {}",
                    actions.join(" · ")
                );
                if !resources.is_empty() {
                    text.push_str(&format!("\n*対象:* {}", resources.join(", ")));
                }
                if !outcome.is_empty() {
                    text.push_str(&format!("\n*未実行:* {}", outcome.join(" · ")));
                }
                text.push_str(&format!(
                    "\n最初 {first}、最後 {last}。読み取りのみの操作は含みません。"
                ));
                text
            }
        }
    }

    /// The notice's line saying how much its sessions have done so far.
    pub fn activity_count(&self, total: u32) -> String {
        match self.lang {
            Lang::En => {
                format!(":memo: {total} write calls in this session so far (see the thread)")
            }
            Lang::Ja => format!(
                ":memo: このセッションの書き込み操作: これまでに {total} 件（スレッド参照）"
            ),
        }
    }

    /// The coverage message's title (organization hub).
    pub fn coverage_title(&self) -> &'static str {
        self.lang.t(
            ":satellite_antenna: privwatch coverage",
            ":satellite_antenna: privwatch 監視範囲",
        )
    }

    pub fn coverage_heading(&self, spokes: usize, minutes: u64) -> String {
        match self.lang {
            Lang::En => format!(
                "privwatch coverage: {spokes} spokes (account × region), heartbeat and CloudTrail canary every \
                 {minutes} minutes; a spoke whose heartbeat or trail is silent for two intervals is alerted."
            ),
            Lang::Ja => format!(
                "privwatch 監視範囲: スポーク {spokes} 件（アカウント × リージョン）、ハートビートと CloudTrail カナリアは \
                 {minutes} 分ごと。ハートビートまたは証跡が 2 回分届かないスポークは通知します。"
            ),
        }
    }

    /// One spoke's line; `account` and `region` as shown (escaped), `last` a date token.
    pub fn coverage_line(
        &self,
        heard: Heard,
        account: &str,
        region: &str,
        last: &str,
        trail: &str,
    ) -> String {
        let state = match heard {
            Heard::Yes => ":large_green_circle:",
            Heard::NotYet => self
                .lang
                .t(":white_circle: not heard yet", ":white_circle: 未受信"),
            Heard::Silent => self.lang.t(":red_circle: silent", ":red_circle: 応答なし"),
        };
        match self.lang {
            Lang::En => {
                format!(
                    "{state} *{account}* {region} · last heartbeat {last} · trail heard {trail}"
                )
            }
            Lang::Ja => {
                format!("{state} *{account}* {region} · 最終ハートビート {last} · 証跡の最終受信 {trail}")
            }
        }
    }

    /// A spoke fell silent: nothing it records would reach privwatch (`what`: everything, only
    /// its CloudTrail canary, or only its heartbeat).
    pub fn silence(
        &self,
        mention: &str,
        account: &str,
        region: &str,
        never_heard: bool,
        since: &str,
        what: Silence,
    ) -> String {
        match (self.lang, what) {
            (Lang::En, Silence::Everything) => {
                let heard = match never_heard {
                    true => format!("no heartbeat has arrived since {since}"),
                    false => format!("its last heartbeat was {since}"),
                };
                format!(
                    "{mention} :red_circle: privwatch cannot hear account *{account}* in region *{region}*: {heard}. \
                     Privileged use there would go unnoticed. Check the spoke's rules (`<function>-heartbeat`) \
                     and the StackSet instance, or whether the account left the organization."
                )
            }
            (Lang::Ja, Silence::Everything) => {
                let heard = match never_heard {
                    true => format!("{since} 以降、ハートビートが一度も届いていません"),
                    false => format!("最後のハートビートは {since} です"),
                };
                format!(
                    "{mention} :red_circle: privwatch はアカウント *{account}* のリージョン *{region}* を受信できません（{heard}）。\
                     そこでの特権利用は検知されません。スポークのルール（`<function>-heartbeat`）と StackSet インスタンス、\
                     またはアカウントが組織を離れていないかを確認してください。"
                )
            }
            (Lang::En, Silence::Trail) => format!(
                "{mention} :red_circle: CloudTrail is silent in account *{account}*, region *{region}*: the canary's \
                 record (`ssm:PutParameter` on `/<function>/canary`) has not arrived since {since}, while the \
                 heartbeat has. A trail stopped, narrowed or deleted there leaves privileged use unrecorded \
                 and unreported. Check CloudTrail in that account and region, and the `<function>-canary` schedule."
            ),
            (Lang::Ja, Silence::Trail) => format!(
                "{mention} :red_circle: アカウント *{account}* のリージョン *{region}* で CloudTrail が沈黙しています。\
                 ハートビートは届いていますが、カナリアの記録（`/<function>/canary` への `ssm:PutParameter`）が \
                 {since} 以降届いていません。証跡が停止・縮小・削除されると、そこでの特権利用は記録も通知もされません。\
                 そのアカウントとリージョンの CloudTrail と、スケジュール `<function>-canary` を確認してください。"
            ),
            (Lang::En, Silence::Schedule) => format!(
                "{mention} :red_circle: account *{account}*, region *{region}*: the heartbeat has not arrived since \
                 {since}, while CloudTrail's canary record has. Check the spoke's rule `<function>-heartbeat`."
            ),
            (Lang::Ja, Silence::Schedule) => format!(
                "{mention} :red_circle: アカウント *{account}* のリージョン *{region}*: CloudTrail のカナリアの記録は届いていますが、\
                 ハートビートが {since} 以降届いていません。スポークのルール `<function>-heartbeat` を確認してください。"
            ),
        }
    }

    /// The silent spoke is heard again.
    pub fn back(&self, account: &str, region: &str) -> String {
        match self.lang {
            Lang::En => format!(
                ":large_green_circle: Back: account *{account}* in region *{region}* is heard again."
            ),
            Lang::Ja => format!(
                ":large_green_circle: 復旧: アカウント *{account}* のリージョン *{region}* を再び受信しています。"
            ),
        }
    }

    /// The Justify modal's words.
    pub fn modal(&self, tracker: bool) -> Modal {
        let l = self.lang;
        Modal {
            title: self.justify_label(),
            submit: l.t("Justify", "送信"),
            close: l.t("Cancel", "キャンセル"),
            purpose: l.t("Purpose of the work", "作業目的や内容"),
            ticket: l.t("Ticket URL", "タスクチケットURL"),
            hint: match tracker {
                true => l.t(
                    "The link of the ticket in your team's tracker.",
                    "チームのチケット管理システムにあるチケットのリンク。",
                ),
                false => l.t("The link of the ticket.", "チケットのリンク。"),
            },
            purpose_missing: l.t(
                "Say what the work was for.",
                "作業の目的を記入してください。",
            ),
            ticket_invalid: l.t(
                "Give the ticket's URL (the link your team's tickets have).",
                "チケットのURLを入力してください（チームのチケットのリンク）。",
            ),
        }
    }

    /// Said to someone who pressed *Justify* but is not the one asked (`asked`: the user ID the
    /// notice asked; `group`: `JUSTIFY_USERGROUP`).
    pub fn only_they_justify(&self, asked: Option<&str>, group: Option<&str>) -> String {
        let who = match (self.lang, asked, group) {
            (Lang::En, Some(user), Some(group)) => {
                format!("<@{user}> or members of <!subteam^{group}>")
            }
            (Lang::Ja, Some(user), Some(group)) => {
                format!("<@{user}> または <!subteam^{group}> のメンバー")
            }
            (_, Some(user), None) => format!("<@{user}>"),
            (Lang::En, None, Some(group)) => format!("members of <!subteam^{group}>"),
            (Lang::Ja, None, Some(group)) => format!("<!subteam^{group}> のメンバー"),
            (Lang::En, None, None) => "the person asked in this thread".to_string(),
            (Lang::Ja, None, None) => "このスレッドで尋ねられた人".to_string(),
        };
        match self.lang {
            Lang::En => format!("Only {who} can justify this."),
            Lang::Ja => format!("{who}だけが理由を記入できます。"),
        }
    }

    /// The justification the *Justify* button posts in the thread (`purpose` and `ticket`
    /// escaped by the caller).
    pub fn justified_with_button(&self, user: &str, purpose: &str, ticket: &str) -> String {
        match self.lang {
            Lang::En => format!(
                "> {purpose}\n> {ticket}\n— <@{user}> justified this with the *Justify* button."
            ),
            Lang::Ja => format!(
                "> {purpose}\n> {ticket}\n— <@{user}> が *{}* ボタンで記入しました。",
                self.justify_label()
            ),
        }
    }

    /// Fills a kind's template. `mention` is markup privwatch chose (live); every other value is
    /// from the record and escaped.
    fn fill(&self, template: &str, u: &PrivilegedUse, mention: &str) -> String {
        let unknown = "?";
        let values: [(&str, String); 10] = [
            ("{mention}", mention.to_string()),
            ("{who}", field(u.identity.label())),
            ("{account}", self.account(&u.account_id)),
            ("{role}", field(role_short(u))),
            (
                "{action}",
                field(u.event_name.as_deref().unwrap_or(unknown)),
            ),
            ("{target}", field(u.target.as_deref().unwrap_or(unknown))),
            ("{task}", field(u.task.as_deref().unwrap_or(unknown))),
            (
                "{target_account}",
                u.target_account
                    .as_deref()
                    .map_or_else(|| unknown.to_string(), |a| self.account(a)),
            ),
            ("{subject}", field(u.identity.label())),
            (
                "{provider}",
                field(u.provider.as_deref().unwrap_or(unknown)),
            ),
        ];
        // One pass over the template, so a value containing `{who}` is never filled again.
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        'outer: while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            for (key, value) in &values {
                if rest[open..].starts_with(key) {
                    out.push_str(value);
                    rest = &rest[open + key.len()..];
                    continue 'outer;
                }
            }
            out.push('{');
            rest = &rest[open + 1..];
        }
        out.push_str(rest);
        out.trim_start().to_string()
    }
}

/// Permission set, else role name, else "an admin role".
pub fn role_short(u: &PrivilegedUse) -> &str {
    if let Some(set) = &u.permission_set {
        return set;
    }
    u.role_arn
        .as_deref()
        .and_then(|arn| arn.rsplit('/').next())
        .unwrap_or("an admin role")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::kind::Kind;
    use crate::event::Identity;

    fn any_use(kind: Kind, failed: bool) -> PrivilegedUse {
        PrivilegedUse {
            kind,
            event_id: "e-1".into(),
            account_id: "111122223333".into(),
            identity: Identity::Person {
                email: "alice@example.com".into(),
            },
            role_arn: Some("arn:aws:iam::111122223333:role/Admin".into()),
            permission_set: None,
            event_name: Some("StopLogging".into()),
            source_ip: Some("192.0.2.1".into()),
            user_agent: None,
            mfa_used: None,
            region: Some("us-east-1".into()),
            time: None,
            failure: failed.then(|| "denied".into()),
            target: Some("main-trail".into()),
            target_account: Some("222222222222".into()),
            task: Some("S3UnlockBucketPolicy".into()),
            provider: Some("token.actions.githubusercontent.com".into()),
            switched_from: None,
            other_account: None,
            shared_event_id: None,
            centralized_root: false,
            session_key: None,
            session: None,
        }
    }

    /// Every kind, in both languages, succeeded or failed: no placeholder is left unfilled, and
    /// every ask mentions whom privwatch chose and asks for the purpose and the ticket.
    #[test]
    fn every_kind_is_worded_in_both_languages() {
        for kind in Kind::ALL {
            for lang in [Lang::En, Lang::Ja] {
                for failed in [false, true] {
                    let w = Wording {
                        lang,
                        ..Wording::default()
                    };
                    let u = any_use(kind, failed);
                    for text in [w.headline(&u), w.summary(&u), w.ask(&u, "<@U1>")] {
                        assert!(
                            !text.contains('{') && !text.contains('}'),
                            "{kind:?} {lang:?}: {text}"
                        );
                        assert!(!text.is_empty());
                    }
                    let ask = w.ask(&u, "<@U1>");
                    assert!(ask.starts_with("<@U1> "), "{ask}");
                    let (purpose, ticket) = match lang {
                        Lang::En => ("purpose", "ticket URL"),
                        Lang::Ja => ("「作業目的や内容」", "「タスクチケットURL」"),
                    };
                    assert!(
                        ask.contains(purpose) && ask.contains(ticket),
                        "{kind:?}: {ask}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_value_that_looks_like_a_placeholder_is_not_filled_again() {
        let mut u = any_use(Kind::AdminRoleViaSaml, false);
        u.identity = Identity::Principal {
            id: "{mention}{account}".into(),
        };
        let text = Wording::default().summary(&u);
        assert!(text.contains("{mention}{account}"), "{text}");
    }

    #[test]
    fn critical_kinds_mention_the_escalation_contact_at_once() {
        let w = Wording {
            critical_mention: Some("<!subteam^S1>".into()),
            ..Wording::default()
        };
        let tamper = any_use(Kind::AlarmTampering, false);
        assert!(w.ask(&tamper, "<@U1>").starts_with("<@U1> <!subteam^S1> "));
        let role = any_use(Kind::AdminRoleViaSaml, false);
        assert!(!w.ask(&role, "<@U1>").contains("subteam"));
    }
}
