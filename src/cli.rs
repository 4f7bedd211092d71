//! The command line a person meets: `privwatch audit`, `privwatch coverage`, `privwatch invoke`,
//! `privwatch rules`, `--help`, `--version`.
//! Argument parsing and output only; the work is the library's.

use clap::{Parser, Subcommand, ValueEnum};
use privwatch::config::Config;
use privwatch::App;
use std::process::ExitCode;
use std::time::Duration;

/// Posts every use of the AWS root user or an admin role to Slack and asks, in the thread, why.
///
/// Without a command, privwatch runs as the AWS Lambda function (EventBridge invokes it).
#[derive(Debug, Parser)]
#[command(name = "privwatch", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export the channel's privileged uses with their justifications, one row each.
    ///
    /// Reads the notices of SLACK_CHANNEL_ID posted since then, with their threads. The token
    /// comes from SLACK_TOKEN_SECRET_ARN (or SLACK_BOT_TOKEN). Rows go to stdout, progress to
    /// stderr.
    Audit {
        /// How far back: a number of days, hours or minutes (30d, 12h, 90m).
        #[arg(long, default_value = "30d", value_parser = since)]
        since: Duration,
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Where to read: the S3 archive (the default when ARCHIVE_BUCKET is set) or the Slack
        /// channels (the default otherwise).
        #[arg(long, value_enum)]
        from: Option<Source>,
    },
    /// Print which accounts and regions the hub hears (organization mode): each channel's
    /// coverage message as a table.
    Coverage,
    /// Handle one event here, as the Lambda function would, with the same environment: a
    /// CloudTrail record as EventBridge delivers it, a schedule, `make smoke`'s test event.
    /// Prints the outcome; exits 1 when the function would have failed (Lambda would retry).
    Invoke {
        /// The event (JSON); `-` reads standard input.
        #[arg(long, default_value = "-")]
        event: std::path::PathBuf,
    },
    /// List the roles and IAM Identity Center permission sets of this account that grant
    /// AdministratorAccess (or * on *) but that ADMIN_ROLE_ARNS, ADMIN_ROLE_PATTERNS and
    /// ADMIN_PERMISSION_SETS do not name: admin paths privwatch would not report.
    ///
    /// Read-only IAM and SSO Admin calls with the caller's credentials. Exits 0 when every admin
    /// path is covered, 1 when one is not, 2 when IAM could not be read.
    Admins {
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
        /// Print only the ARNs of ADMIN_PERMISSION_SETS (names resolved), one per line, for the
        /// Identity Center assignment rule.
        #[arg(long)]
        permission_set_arns: bool,
    },
    /// Print the EventBridge rules of every kind privwatch reports, as infra/rules.json holds
    /// them (the templates are rendered from it).
    Rules,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    S3,
    Slack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// For a person.
    Text,
    Json,
}

fn since(value: &str) -> Result<Duration, String> {
    privwatch::audit::parse_since(value)
        .ok_or_else(|| format!("{value:?} is not a duration such as 30d, 12h or 90m"))
}

pub async fn run(command: Command) -> ExitCode {
    match command {
        Command::Rules => {
            let rules = privwatch::event::kind::rules_document();
            println!(
                "{}",
                serde_json::to_string_pretty(&rules).expect("rules serialize")
            );
            ExitCode::SUCCESS
        }
        Command::Audit {
            since,
            format,
            from,
        } => audit(since, format, from).await,
        Command::Coverage => coverage().await,
        Command::Admins {
            format,
            permission_set_arns,
        } => admins(format, permission_set_arns).await,
        Command::Invoke { event } => invoke(&event).await,
    }
}

async fn invoke(path: &std::path::Path) -> ExitCode {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    let payload: serde_json::Value = match text
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(payload) => payload,
        Err(e) => {
            eprintln!(
                "privwatch invoke: cannot read the event {}: {e}",
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    let app = match app("invoke").await {
        Ok(app) => app,
        Err(code) => return code,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    match privwatch::handle(&app, &payload, deadline).await {
        Ok(outcome) => match serde_json::to_string(&outcome) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("privwatch invoke: the outcome could not be written: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("privwatch invoke: {} ({})", e, e.error_type());
            ExitCode::FAILURE
        }
    }
}

/// The app as the Lambda builds it, from the same environment; a bad setting exits 2.
async fn app(command: &str) -> Result<App, ExitCode> {
    let config = Config::from_env().map_err(|e| {
        eprintln!("privwatch {command}: {e}");
        ExitCode::from(2)
    })?;
    App::from_config(config).await.map_err(|e| {
        eprintln!("privwatch {command}: {e}");
        ExitCode::FAILURE
    })
}

async fn coverage() -> ExitCode {
    let app = match app("coverage").await {
        Ok(app) => app,
        Err(code) => return code,
    };
    match privwatch::coverage::table(&app).await {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("privwatch coverage: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn admins(format: ReportFormat, permission_set_arns: bool) -> ExitCode {
    use privwatch::admins::{find, Declared};
    let declared = Declared::from_lookup(|name| std::env::var(name).ok());
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let iam = aws_sdk_iam::Client::new(&aws);
    let sso = aws_sdk_ssoadmin::Client::new(&aws);
    if permission_set_arns {
        let report = privwatch::admins::permission_set_arns(&sso, &declared).await;
        for arn in &report.permission_set_arns {
            println!("{arn}");
        }
        for note in &report.notes {
            eprintln!("privwatch admins: {note}");
        }
        return ExitCode::SUCCESS;
    }
    let report = match find(&iam, &sso, &declared).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("privwatch admins: {e}");
            return ExitCode::from(2);
        }
    };
    match format {
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        ),
        ReportFormat::Text => print!("{}", report.to_text()),
    }
    let all_covered = report.uncovered().next().is_none();
    match all_covered {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}

async fn audit(since: Duration, format: Format, from: Option<Source>) -> ExitCode {
    let app = match app("audit").await {
        Ok(app) => app,
        Err(code) => return code,
    };
    let from = from.unwrap_or(match app.archive {
        Some(_) => Source::S3,
        None => Source::Slack,
    });
    let progress = |p: &str| eprintln!("audit: {p}");
    let rows = match from {
        Source::S3 if app.archive.is_none() => {
            eprintln!("privwatch audit: --from s3 needs ARCHIVE_BUCKET");
            return ExitCode::from(2);
        }
        Source::S3 => privwatch::audit::export_archive(&app, since, progress).await,
        Source::Slack => privwatch::audit::export(&app, since, progress).await,
    };
    match rows {
        Ok(rows) => {
            let out = match format {
                Format::Json => privwatch::audit::to_json(&rows),
                Format::Csv => privwatch::audit::to_csv(&rows),
            };
            print!("{out}");
            eprintln!("audit: {} privileged uses written", rows.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("privwatch audit: {e}");
            ExitCode::FAILURE
        }
    }
}
