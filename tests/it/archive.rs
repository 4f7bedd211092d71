//! The S3 archive with the real `aws-sdk-s3` client against moto's S3 (`make test` starts moto):
//! each use written as it is delivered, a retry rewriting nothing (conditional create), a failed
//! write failing the invocation and its retry completing only what is missing, the sweep's
//! justification archived, and `privwatch audit --from s3` reading it back.

use crate::support::*;
use privwatch::aws::archive::Archive;
use privwatch::{handle, Outcome};
use serde_json::Value;
use slack_sandbox::DEMO_CHANNEL;

#[tokio::test]
async fn each_use_is_archived_once_and_a_failed_write_fails_the_invocation() {
    let Some(url) = moto_url("the S3 archive") else {
        return;
    };
    let client = s3(&url);
    let sandbox = sandbox().await;

    // The bucket is missing: Slack gets the notice, the invocation fails for the archive.
    let missing = format!("privwatch-missing-{}", std::process::id());
    let mut app = app_for(&sandbox);
    app.archive = Some(Archive::new(client.clone(), &missing));
    let event = fixture("root-signin-success-mfa.json");
    let id = event["detail"]["eventID"].as_str().unwrap().to_string();
    let error = handle(&app, &event, deadline(10)).await.unwrap_err();
    assert_eq!(
        error.error_type(),
        "privwatch.ArchiveUnavailable",
        "{error}"
    );
    assert_eq!(
        sandbox.top_level(DEMO_CHANNEL).len(),
        1,
        "written beside Slack"
    );

    // The retry (the bucket there now) completes only what is missing.
    let name = bucket(&client, "privwatch-archive").await;
    app.archive = Some(Archive::new(client.clone(), &name));
    handle(&app, &event, deadline(10)).await.unwrap();
    assert_eq!(sandbox.top_level(DEMO_CHANNEL).len(), 1, "no second notice");
    let key = format!("uses/{id}.json");
    let (record, etag) = object(&client, &name, &key).await.expect("archived");
    assert_eq!(record["event_id"], id.as_str());
    assert_eq!(record["kind"], "root_console_sign_in");
    assert_eq!(
        record["record"]["eventID"],
        id.as_str(),
        "the CloudTrail record with it"
    );

    // A redelivery rewrites nothing.
    handle(&app, &event, deadline(10)).await.unwrap();
    let (_, again) = object(&client, &name, &key).await.unwrap();
    assert_eq!(again, etag, "append-only: the object is untouched");
    let versions = client
        .list_object_versions()
        .bucket(&name)
        .prefix("uses/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.versions().len(),
        1,
        "one version: nothing rewritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn justifications_are_archived_and_the_audit_reads_the_archive() {
    let Some(url) = moto_url("the S3 archive") else {
        return;
    };
    let client = s3(&url);
    let name = bucket(&client, "privwatch-audit").await;
    let sandbox = sandbox().await;
    let mut app = app_for(&sandbox);
    app.archive = Some(Archive::new(client.clone(), &name));
    for id in ["arch-1", "arch-2"] {
        handle(
            &app,
            &use_at("saml-google-workspace-admin.json", id, 0),
            deadline(10),
        )
        .await
        .unwrap();
    }
    let ts = sandbox.top_level(DEMO_CHANNEL)[0].ts.clone();
    sandbox.post_as_user(
        DEMO_CHANNEL,
        "U01ALICE",
        "Rotating the KMS key <https://tickets.example/SEC-42>",
        Some(&ts),
    );
    let Outcome::Swept(report) = handle(&app, &fixture("schedule/sweep.json"), deadline(10))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(report.justified, 1);
    let (justification, _) = object(&client, &name, "justifications/arch-1.json")
        .await
        .expect("the justification is archived");
    assert_eq!(justification["purpose"], "Rotating the KMS key");
    assert_eq!(
        justification["ticket_url"],
        "https://tickets.example/SEC-42"
    );
    assert_eq!(justification["replied_by"][0], "U01ALICE");

    // Slack forgets (retention, a deleted message): the archive does not.
    sandbox.reset();
    let out = audit_cli_with(
        &sandbox,
        &["--since", "1d", "--format", "json"],
        &[
            ("ARCHIVE_BUCKET", name.as_str()),
            ("AWS_ENDPOINT_URL", url.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row["justified"], true);
        assert_eq!(row["justification"], "Rotating the KMS key");
        assert_eq!(row["ticket_url"], "https://tickets.example/SEC-42");
    }
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["arch-1", "arch-2"]);
}

/// S3 answers `409 ConditionalRequestConflict` when two conditional writes race ("On a 409
/// failure you should retry the upload", PutObject, Amazon S3 API Reference). moto never does, so
/// a stand-in S3 answers the first two PUTs 409 and the third 200: the use is archived, and the
/// invocation does not fail. (With the retry taken out of `Archive::put`, this fails.)
#[tokio::test]
async fn a_409_conditional_request_conflict_is_written_again() {
    use privwatch::aws::archive::Created;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let puts = Arc::new(AtomicUsize::new(0));
    let seen = puts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let puts = seen.clone();
            tokio::spawn(async move {
                loop {
                    // One request: its head, then its body (Content-Length or chunked).
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    let head_end = loop {
                        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    let complete = |r: &[u8]| match length {
                        Some(n) => r.len() >= head_end + n,
                        None if head.contains("transfer-encoding: chunked") => {
                            r.ends_with(b"0\r\n\r\n")
                        }
                        None => true,
                    };
                    while !complete(&request) {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = if head.starts_with("put ") {
                        if puts.fetch_add(1, Ordering::SeqCst) < 2 {
                            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ConditionalRequestConflict</Code><Message>A conflicting conditional operation is currently in progress against this resource. Please try again.</Message></Error>";
                            format!("HTTP/1.1 409 Conflict\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}", body.len())
                        } else {
                            "HTTP/1.1 200 OK\r\netag: \"e1\"\r\ncontent-length: 0\r\n\r\n"
                                .to_string()
                        }
                    } else {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_string()
                    };
                    if socket.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });

    let archive = Archive::new(s3(&url), "privwatch-archive");
    let record = root_sign_in("e-409");
    assert_eq!(archive.put_use(&record).await.unwrap(), Created::New);
    assert_eq!(
        puts.load(Ordering::SeqCst),
        3,
        "two conflicts, then the write"
    );
}

/// With `ARCHIVE_LOCK_DAYS`, each record carries its own compliance-mode retention and the
/// working state none: the bucket has Object Lock on without a default retention, so a long
/// series' state (rewritten with every use) is not kept version by version for the lock period.
#[tokio::test]
async fn records_are_locked_one_by_one_and_the_working_state_is_not() {
    let Some(url) = moto_url("Object Lock per record") else {
        return;
    };
    let client = s3(&url);
    let name = format!("privwatch-locked-{}", std::process::id());
    client
        .create_bucket()
        .bucket(&name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let archive = Archive::new(client.clone(), &name).locking_records_for(Some(7));
    let record = root_sign_in("locked-1");
    archive.put_use(&record).await.unwrap();
    archive
        .put_series("k", &serde_json::json!({"count": 1}), None)
        .await
        .unwrap()
        .expect("written");

    // (HeadObject: moto answers GetObjectRetention with the object itself.)
    let head = |key: &'static str| client.head_object().bucket(&name).key(key).send();
    let locked = head("uses/locked-1.json").await.unwrap();
    assert_eq!(
        locked.object_lock_mode(),
        Some(&aws_sdk_s3::types::ObjectLockMode::Compliance)
    );
    let until = locked.object_lock_retain_until_date().unwrap().secs();
    let days = (until - chrono::Utc::now().timestamp()) / 86_400;
    assert!((6..=7).contains(&days), "{days} days");
    let state = head("threads/k.json").await.unwrap();
    assert_eq!(
        state.object_lock_mode(),
        None,
        "the working state carries no retention"
    );
}

/// A root sign-in as the archive records it, with event ID `id`.
fn root_sign_in(id: &str) -> privwatch::aws::archive::UseRecord {
    privwatch::aws::archive::UseRecord {
        event_id: id.into(),
        kind: "root_console_sign_in".into(),
        account: "111122223333".into(),
        principal: "root".into(),
        role: String::new(),
        source_ip: "192.0.2.1".into(),
        time: "2026-12-03T10:00:00Z".into(),
        region: "us-east-1".into(),
        archived_at: 0,
        record: Value::Null,
    }
}
