#!/usr/bin/env python3
"""Builds the fixtures of the kinds added in issue #11 from the public records in
docs/research/cloudtrail-records/ (each with its .source.txt): wraps the CloudTrail record in the
EventBridge envelope AWS delivers, and rewrites only what must match this repository's example
deployment (account IDs, admin role names, privwatch's own resource names, people as the sandbox's
users). What was rewritten is listed in fixtures/SOURCES.md. Run from the repository root:
    python3 docs/research/make-fixtures.py
"""

import copy
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESEARCH = ROOT / "docs/research/cloudtrail-records"
FIXTURES = ROOT / "fixtures"
ACCOUNT = "111122223333"
OTHER = "444455556666"
MEMBER = "222233334444"


def record(name):
    return json.loads((RESEARCH / f"{name}.json").read_text())


def envelope(detail, source, detail_type="AWS API Call via CloudTrail", account=ACCOUNT):
    return {
        "version": "0",
        "id": "e0" + detail["eventID"][2:],
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": detail["eventTime"],
        "region": detail["awsRegion"],
        "resources": [],
        "detail": detail,
    }


def write(name, event):
    (FIXTURES / name).write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n")


def person(detail, email, account=ACCOUNT):
    """An IAM user of the example account, named by e-mail (the sandbox's user)."""
    detail["userIdentity"].update({
        "type": "IAMUser",
        "arn": f"arn:aws:iam::{account}:user/{email}",
        "accountId": account,
        "userName": email,
    })
    detail["recipientAccountId"] = account


# 1. sts:AssumeRoot (AWS IAM User Guide, "Track privileged tasks in CloudTrail").
d = record("assume-root_aws-doc")
session = "arn:aws:sts::%s:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/erin@example.com" % ACCOUNT
d["userIdentity"].update({"principalId": "AROA3EXAMPLEERINSSO:erin@example.com", "arn": session, "accountId": ACCOUNT})
d["userIdentity"]["sessionContext"]["sessionIssuer"].update({
    "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_0123456789abcdef",
    "accountId": ACCOUNT, "userName": "AWSReservedSSO_AdministratorAccess_0123456789abcdef"})
d["requestParameters"]["targetPrincipal"] = MEMBER
d.update({"eventID": "a5500c1e-0001-4d6e-9c1e-7a55e4700001", "requestID": "a5500c1e-0001-4d6e-9c1e-7a55e4700002",
          "readOnly": True, "eventType": "AwsApiCall", "managementEvent": True,
          "recipientAccountId": ACCOUNT, "eventCategory": "Management"})
write("assume-root-management.json", envelope(d, "aws.sts"))

# 2. A call in that root session, in the member account (same page of the AWS guide).
d = record("assume-root-member-session_aws-doc")
d["userIdentity"].update({"principalId": MEMBER, "arn": f"arn:aws:iam::{MEMBER}:root", "accountId": MEMBER})
d["recipientAccountId"] = MEMBER
d["resources"][0]["accountId"] = MEMBER
d["eventID"] = "a5500c1e-0002-4d6e-9c1e-7a55e4700003"
write("root-session-member-call.json", envelope(d, "aws.s3", account=MEMBER))

# 3. Console SwitchRole into an admin role (real, davxiao) and 4. into a role that is not one.
d = record("switch-role_davxiao")
d["userIdentity"].update({"principalId": "AROA3EXAMPLEORGACCESS:bob@example.com",
                          "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/OrganizationAccountAccessRole/bob@example.com",
                          "accountId": ACCOUNT})
d["additionalEventData"]["SwitchFrom"] = f"arn:aws:iam::{OTHER}:user/bob@example.com"
d["recipientAccountId"] = ACCOUNT
write("switch-role-admin.json", envelope(d, "aws.signin", "AWS Console Sign In via CloudTrail"))
n = copy.deepcopy(d)
n["userIdentity"]["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/ReadOnlyAccess/bob@example.com"
n["eventID"] = "70627092-0c9c-4163-9975-42ffcc50a380"
write("ignored-switch-role-non-admin.json", envelope(n, "aws.signin", "AWS Console Sign In via CloudTrail"))

# 5. GitHub Actions OIDC into an admin role, and 6. into the repository's own (non-admin) role
# (real, cloud-snitch).
d = record("web-identity-github-oidc_cloud-snitch")
n = copy.deepcopy(d)
sub = "repo:example-org/infra:ref:refs/heads/main"
provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
d["userIdentity"].update({"principalId": f"{provider}:sts.amazonaws.com:{sub}", "userName": sub, "identityProvider": provider})
role = f"arn:aws:iam::{ACCOUNT}:role/CiDeployAdmin"
d["requestParameters"]["roleArn"] = role
d["responseElements"].update({"subjectFromWebIdentityToken": sub, "provider": provider})
d["responseElements"]["assumedRoleUser"]["arn"] = f"arn:aws:sts::{ACCOUNT}:assumed-role/CiDeployAdmin/GitHubActions"
d["resources"] = [{"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": role}]
d["recipientAccountId"] = ACCOUNT
write("web-identity-github-admin.json", envelope(d, "aws.sts"))
n["recipientAccountId"] = ACCOUNT
write("ignored-web-identity-non-admin.json", envelope(n, "aws.sts"))

# 7. Root password change (AWS CloudTrail User Guide, sign-in events) and 8. an IAM user's.
d = record("root-password-updated_aws-doc")
d["userIdentity"].update({"principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT})
d.setdefault("eventID", "0f0f0f0f-7001-4c1e-9a1a-p4ssw0rd0001".replace("p4ssw0rd", "0a55e0d0"))
d["recipientAccountId"] = ACCOUNT
write("root-password-updated.json", envelope(d, "aws.signin", "AWS Console Sign In via CloudTrail"))
n = copy.deepcopy(d)
person(n, "alice@example.com")
n["eventID"] = "0f0f0f0f-7001-4c1e-9a1a-0a55e0d00002"
write("ignored-iam-user-password-updated.json", envelope(n, "aws.signin", "AWS Console Sign In via CloudTrail"))

# 9./10. One cross-account AssumeRole, as the role's account and the caller's account record it
# (real, davxiao): the role is the example account's admin role.
for name, out, account in [
    ("cross-account-assumerole-role-account-console_davxiao", "cross-account-assume-role-role-account.json", ACCOUNT),
    ("cross-account-assumerole-source-account-console_davxiao", "cross-account-assume-role-caller-account.json", OTHER),
]:
    d = json.loads(json.dumps(record(name)).replace("776613361644", ACCOUNT).replace("203016562928", OTHER)
                   .replace("assume-admin-role-example", "OrganizationAccountAccessRole"))
    write(out, envelope(d, "aws.sts", account=account))

# 11.-16. Tampering with the alarm (real: Stratus Red Team detonations, Invictus IR, Elastic);
# the resources are renamed to privwatch's own, the regions (anonymised by Stratus) to real ones.
def tamper(name, out, source, params, region="us-east-1", who="alice@example.com", event_id=None):
    d = record(name)
    person(d, who)
    if event_id:
        d["eventID"] = event_id
    d["awsRegion"] = region
    d["requestParameters"].update(params)
    write(out, envelope(d, source))

tamper("tamper-cloudtrail-stoplogging_stratus", "tamper-stop-logging.json", "aws.cloudtrail",
       {"name": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/management-events"})
tamper("tamper-cloudtrail-puteventselectors_stratus", "tamper-put-event-selectors.json", "aws.cloudtrail",
       {"trailName": "management-events"})
tamper("tamper-eventbridge-deleterule_elastic", "tamper-delete-rule.json", "aws.events",
       {"name": "privwatch-root-console-sign-in"})
tamper("tamper-lambda-updatefunctioncode_stratus", "tamper-update-function-code.json", "aws.lambda",
       {"functionName": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:privwatch",
        "fullyQualifiedArn": {"arnPrefix": {"account": ACCOUNT, "partition": "aws", "region": "us-east-1"},
                              "functionQualifier": {}, "relativeId": {"functionName": "privwatch"}}})
tamper("tamper-iam-attachrolepolicy_stratus", "tamper-attach-role-policy.json", "aws.iam",
       {"roleName": "privwatch-notifier-FunctionRole-1A2B3C4D5E6F"})
tamper("tamper-secretsmanager-putsecretvalue_invictus", "tamper-put-secret-value.json", "aws.secretsmanager",
       {"secretId": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:privwatch/slack-bot-token-AbCdEf"})
# RemoveTargets: no public record was found; the DeleteRule record above made into one (same
# envelope, the request parameters RemoveTargets takes).
d = record("tamper-eventbridge-deleterule_elastic")
person(d, "alice@example.com")
d.update({"eventName": "RemoveTargets", "eventID": "17b63f55-a391-41dd-bc1c-a70bb2f0ba44",
          "requestParameters": {"rule": "privwatch-admin-role-via-saml", "ids": ["privwatch"], "force": False},
          "responseElements": {"failedEntryCount": 0, "failedEntries": []}})
d["userAgent"] = d["userAgent"].replace("events.delete-rule", "events.remove-targets")
write("tamper-remove-targets.json", envelope(d, "aws.events"))
# Near misses: another team's rule (real record as published), and a selector change that keeps
# every management event.
tamper("tamper-eventbridge-deleterule_elastic", "ignored-delete-other-rule.json", "aws.events", {},
       event_id="17b63f55-a391-41dd-bc1c-a70bb2f0ba45")
d = record("tamper-cloudtrail-puteventselectors_stratus")
person(d, "alice@example.com")
d["awsRegion"] = "us-east-1"
d["eventID"] = "c2a89408-340a-42f0-8ace-75d9f5769394"
d["requestParameters"] = {"trailName": "management-events", "eventSelectors": [
    {"dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3:::audit-bucket/"]}],
     "excludeManagementEventSources": [], "includeManagementEvents": True, "readWriteType": "All"}]}
write("ignored-put-event-selectors-keeps-management.json", envelope(d, "aws.cloudtrail"))

# Issue #21: admin made by other means, and the other alarms switched off. Real records where one
# was published (Invictus IR, Stratus Red Team, Elastic, Panther); the rest derived from one of
# them, as fixtures/SOURCES.md says.
def real(name, out, source, who="alice@example.com", region="us-east-1", params=None, **fields):
    d = record(name)
    if who:
        person(d, who)
    d["awsRegion"] = region
    if params is not None:
        d["requestParameters"] = params
    d.update(fields)
    write(out, envelope(d, source))
    return d

ADMIN_DOCUMENT = '{\n    "Version": "2012-10-17",\n    "Statement": [\n        {\n            "Action": "*",\n            "Resource": "*",\n            "Effect": "Allow"\n        }\n    ]\n}\n'
real("admin-attachuserpolicy_invictus", "admin-granted-attach-user-policy.json", "aws.iam")
real("nonadmin-attachgrouppolicy-readonly_elastic", "ignored-attach-read-only.json", "aws.iam")
d = record("policy-putrolepolicy-terraform_invictus")
real("policy-putrolepolicy-terraform_invictus", "admin-granted-inline-role-policy.json", "aws.iam",
     params={**d["requestParameters"], "policyDocument": ADMIN_DOCUMENT},
     eventID="a092fecb-2cb1-4c68-809d-1edf688bad21")
real("policy-putuserpolicy-console_panther", "ignored-inline-policy-deny-all.json", "aws.iam", who=None)
# Panther keeps its own time format and no event ID: CloudTrail's are put back.
real("federation-createsamlprovider-sso-service_panther", "federation-create-saml-provider.json", "aws.iam",
     who=None, eventTime="2022-12-12T21:46:17Z", eventID="5a3c1e00-2112-4b6e-9d2a-fed0000000a1",
     recipientAccountId=ACCOUNT)
d = record("creds-createloginprofile_stratus")
real("creds-createloginprofile_stratus", "credentials-login-profile-for-other.json", "aws.iam")
real("creds-createaccesskey-other-user_stratus", "credentials-access-key-for-other.json", "aws.iam")
real("creds-createaccesskey-other-user_stratus", "ignored-own-access-key.json", "aws.iam",
     params={"userName": "alice@example.com"}, eventID="c64c4ded-ef03-4e5c-81eb-153b118d7221")
real("alarm-guardduty-deletedetector_elastic", "alarm-off-guardduty-delete-detector.json", "aws.guardduty")
d = record("alarm-guardduty-deletedetector_elastic")
real("alarm-guardduty-deletedetector_elastic", "ignored-guardduty-kept-on.json", "aws.guardduty",
     params={**d["requestParameters"], "enable": True, "findingPublishingFrequency": "FIFTEEN_MINUTES"},
     eventName="UpdateDetector", eventID="3468e5a5-fdab-4c86-a43e-bc8e1d9bd421")
real("alarm-config-stopconfigurationrecorder_elastic", "alarm-off-config-stop-recorder.json", "aws.config")
# No public DisableSecurityHub or DisableOrganizationsRootSessions record: the DeleteDetector
# record made into each (the call takes no parameters).
d = real("alarm-guardduty-deletedetector_elastic", "alarm-off-security-hub.json", "aws.securityhub", params={},
         eventSource="securityhub.amazonaws.com", eventName="DisableSecurityHub",
         eventID="3468e5a5-fdab-4c86-a43e-bc8e1d9bd422")
real("alarm-guardduty-deletedetector_elastic", "alarm-off-root-access.json", "aws.iam",
     requestParameters=None, eventSource="iam.amazonaws.com", eventName="DisableOrganizationsRootSessions",
     eventID="3468e5a5-fdab-4c86-a43e-bc8e1d9bd423")
real("alarm-organizations-leaveorganization-denied_stratus", "alarm-off-leave-organization.json",
     "aws.organizations", who=None)

# A role opened to an outside account (real, Stratus) and one whose trust names only its own
# account (real, Elastic: its placeholder account was the record's own, here the example's).
real("trust-updateassumerolepolicy_stratus", "trust-opened-outside-account.json", "aws.iam")
d = record("trust-updateassumerolepolicy_elastic")
real("trust-updateassumerolepolicy_elastic", "ignored-trust-own-account.json", "aws.iam",
     params={**d["requestParameters"],
             "policyDocument": d["requestParameters"]["policyDocument"].replace('"000000000"', f'"{ACCOUNT}"')})

# IAM Identity Center (issue #21, item 4). Real records of CreateAccountAssignment and
# CreatePermissionSet and of an identity-store call (a public capture of a researcher's own
# organization; its placeholders `<MANAGEMENT_ACCT_ID>` and `<REDACTED>` filled in). No public
# record of AttachManagedPolicyToPermissionSet, PutInlinePolicyToPermissionSet or an identity
# source change was found: those are the real CreatePermissionSet / CreateGroup records with
# the call's name and its parameters as the API reference names them (lower camel case, as
# CloudTrail writes Identity Center's parameters in the real records).
def captured(name):
    text = (RESEARCH / f"{name}.json").read_text()
    d = json.loads(text.replace("<MANAGEMENT_ACCT_ID>", ACCOUNT))
    d["sourceIPAddress"] = "198.51.100.23"
    d["userIdentity"].update({"principalId": "AIDAEXAMPLEALICE0001", "accessKeyId": "ASIAEXAMPLEALICE0001"})
    return d


def identity_center(name, out, source="aws.sso", params=None, **fields):
    d = captured(name)
    person(d, "alice@example.com")
    if params is not None:
        d["requestParameters"] = params
    d.update(fields)
    write(out, envelope(d, source))


INSTANCE = "arn:aws:sso:::instance/ssoins-72233af8ea2d1f14"
ADMIN_SET = "arn:aws:sso:::permissionSet/ssoins-72233af8ea2d1f14/ps-ae5d1fa1f80b684e"
identity_center("identity-center-createaccountassignment_markdown-capture", "identity-center-admin-assignment.json")
d = captured("identity-center-createaccountassignment_markdown-capture")
identity_center("identity-center-createaccountassignment_markdown-capture", "ignored-identity-center-other-assignment.json",
                params={**d["requestParameters"], "permissionSetArn": ADMIN_SET.replace("ps-ae5d1fa1f80b684e", "ps-0a1b2c3d4e5f6789")},
                responseElements=None, eventID="bea150ce-12b4-4417-9983-7be8c28a7a3b")
for out, policy, event_id in [
    ("identity-center-admin-policy.json", "arn:aws:iam::aws:policy/AdministratorAccess", "12d9425b-0114-4550-b2e4-71a7047ab930"),
    ("ignored-identity-center-read-only-policy.json", "arn:aws:iam::aws:policy/ReadOnlyAccess", "12d9425b-0114-4550-b2e4-71a7047ab931"),
]:
    identity_center("identity-center-createpermissionset_markdown-capture", out,
                    params={"instanceArn": INSTANCE, "permissionSetArn": ADMIN_SET, "managedPolicyArn": policy},
                    responseElements=None, eventName="AttachManagedPolicyToPermissionSet", eventID=event_id)
NARROW = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":"*"}]}'
for out, policy, event_id in [
    ("identity-center-inline-admin.json", ADMIN_DOCUMENT, "12d9425b-0114-4550-b2e4-71a7047ab932"),
    ("ignored-identity-center-inline-narrow.json", NARROW, "12d9425b-0114-4550-b2e4-71a7047ab933"),
]:
    identity_center("identity-center-createpermissionset_markdown-capture", out,
                    params={"instanceArn": INSTANCE, "permissionSetArn": ADMIN_SET, "inlinePolicy": policy},
                    responseElements=None, eventName="PutInlinePolicyToPermissionSet", eventID=event_id)
identity_center("identity-store-creategroup_markdown-capture", "federation-identity-center-idp.json", "aws.sso-directory",
                params={"identityStoreId": "d-906791299c"}, responseElements=None,
                eventName="DisableExternalIdPConfigurationForDirectory", eventID="836a0000-0000-4000-8000-00000000d15a")

# Issue #22: an admin session's calls. Real calls made in an assumed role's session (Stratus's
# refused RunInstances; a console CreateUser after a Switch Role, from davxiao's post), moved into
# the sessions the fixtures above start: the session's ARN and creation time are the start's, the
# rest is the published call's.
def in_session(name, out, arn, created, at, event_id, source):
    d = record(name)
    role = arn.split(":assumed-role/")[1].split("/")[0]
    session_name = arn.rsplit("/", 1)[1]
    d["userIdentity"].update({
        "type": "AssumedRole",
        "arn": arn,
        "accountId": ACCOUNT,
        "principalId": f"AROAEXAMPLE{role.upper()[:9]}:{session_name}",
    })
    d["userIdentity"]["sessionContext"]["sessionIssuer"].update({
        "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "accountId": ACCOUNT, "userName": role,
        "principalId": f"AROAEXAMPLE{role.upper()[:9]}",
    })
    d["userIdentity"]["sessionContext"]["attributes"]["creationDate"] = created
    d["recipientAccountId"] = ACCOUNT
    d["eventTime"] = at
    d["eventID"] = event_id
    d["awsRegion"] = "us-east-1"
    # Today's records always say it (the 2020 record predates the field).
    d["readOnly"] = False
    if "errorMessage" in d:
        d["errorMessage"] = d["errorMessage"].split(" Encoded authorization failure message")[0]
    write(out, envelope(d, source))


SAML = f"arn:aws:sts::{ACCOUNT}:assumed-role/GoogleWorkspaceAdmin/alice@example.com"
SWITCHED = f"arn:aws:sts::{ACCOUNT}:assumed-role/OrganizationAccountAccessRole/bob@example.com"
UNSEEN = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/erin@example.com"
in_session("session-stratus-ec2lui-runinstances-unauthorized", "session-saml-run-instances-refused.json",
           SAML, "2026-11-01T10:02:11Z", "2026-11-01T10:05:23Z", "1a4debbb-12e9-4bde-b8c7-ea29002bb2a7", "aws.ec2")
in_session("session-davxiao-switchrole-createuser", "session-saml-create-user.json",
           SAML, "2026-11-01T10:02:11Z", "2026-11-01T10:06:08Z", "38d0221b-61e0-47d6-9c45-7eb2dc551201", "aws.iam")
in_session("session-davxiao-switchrole-createuser", "session-switch-role-create-user.json",
           SWITCHED, "2020-09-17T19:04:10Z", "2020-09-17T19:05:08Z", "38d0221b-61e0-47d6-9c45-7eb2dc55125b", "aws.iam")
in_session("session-davxiao-switchrole-createuser", "session-unseen-start-create-user.json",
           UNSEEN, "2026-11-01T08:30:00Z", "2026-11-01T09:10:00Z", "38d0221b-61e0-47d6-9c45-7eb2dc551202", "aws.iam")
in_session("session-davxiao-switchrole-createuser", "ignored-session-of-a-non-admin-role.json",
           f"arn:aws:sts::{ACCOUNT}:assumed-role/ReadOnly/dave@example.com", "2026-11-01T08:30:00Z",
           "2026-11-01T09:10:00Z", "38d0221b-61e0-47d6-9c45-7eb2dc551203", "aws.iam")

# The root user's console session: the same real CreateUser call made as root in the session the
# root sign-in fixture opens (root console calls carry the sign-in's time as `creationDate`, as
# the real root Identity Center records above do).
d = record("session-davxiao-switchrole-createuser")
signin = json.loads((FIXTURES / "root-signin-success-mfa.json").read_text())["detail"]
d["userIdentity"] = {
    "type": "Root",
    "principalId": ACCOUNT,
    "arn": f"arn:aws:iam::{ACCOUNT}:root",
    "accountId": ACCOUNT,
    "accessKeyId": "ASIAEXAMPLEROOTCONSOLE",
    "sessionContext": {"sessionIssuer": {}, "webIdFederationData": {},
                       "attributes": {"creationDate": signin["eventTime"], "mfaAuthenticated": "true"}},
}
d.update({"recipientAccountId": ACCOUNT, "eventTime": "2026-11-01T09:20:05Z", "readOnly": False,
          "eventID": "38d0221b-61e0-47d6-9c45-7eb2dc551204", "awsRegion": "us-east-1",
          "sessionCredentialFromConsole": "true"})
write("session-root-create-user.json", envelope(d, "aws.iam"))
