#!/usr/bin/env python3
"""moto's server, taught what AWS does and moto 5.2 leaves out.

Lambda's GetAccountSettings is not implemented by moto (a 404), yet AWS answers it with the
account's concurrency quota, and a stack that reserves concurrency the account cannot spare rolls
back ("Configuring reserved concurrency for a function", AWS Lambda Developer Guide). Here it
answers from the quota in MOTO_LAMBDA_CONCURRENCY_QUOTA (default 1000, like a new AWS account's
default quota once raised; moto's own PutFunctionConcurrency enforces the same variable), less
what moto's functions reserve. Tests set the quota with `POST /privwatch-moto/lambda-quota`
(body: the number; `DELETE` for the default), e.g. 10 for a fresh Control Tower account.

moto also skips AWS::Lambda::Url in a template (a warning, and the stack completes without it),
though its API makes URLs: here the resource is made through that API, so a deploy with the
Justify button has a URL to read back, as on AWS. AWS::SNS::Subscription is skipped the same
way (the alarm e-mail): it is made through moto's Subscribe.

StackSets with service-managed permissions need trusted access with AWS Organizations; moto has
no DescribeOrganizationsAccess. Here it answers ENABLED, or what `POST
/privwatch-moto/stacksets-access` (ENABLED or DISABLED) set.

EventBridge: moto's PutEvents fails (500) when a matching rule targets a Lambda function, where
AWS hands the event to Lambda's asynchronous queue. Here the event is kept as Lambda would
receive it, for the caller to run the function on (moto cannot run one: no Docker):
`GET /privwatch-moto/lambda-deliveries` lists them (function ARN, rule, event).

usage: moto_server.py -H HOST -p PORT (as moto_server)
"""

import io
import json
import os
import re
import sys

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.common_models import CloudFormationModel
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

DEFAULT_QUOTA = 1000


def quota() -> int:
    return int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA", DEFAULT_QUOTA))


def account_settings(environ) -> dict:
    from moto.awslambda.models import lambda_backends

    scope = re.search(r"Credential=[^/]+/\d+/([a-z0-9-]+)/lambda/", environ.get("HTTP_AUTHORIZATION", ""))
    region = scope.group(1) if scope else "us-east-1"
    backend = lambda_backends[DEFAULT_ACCOUNT_ID][region]
    reserved = sum(int(f.reserved_concurrency or 0) for f in backend.list_functions())
    functions = len(backend.list_functions())
    return {
        "AccountLimit": {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": quota(),
            "UnreservedConcurrentExecutions": quota() - reserved,
        },
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": functions},
    }


class FunctionUrl(CloudFormationModel):
    """AWS::Lambda::Url through moto's own CreateFunctionUrlConfig."""

    # (moto's model registry keys models by the service named in their module)
    __module__ = "moto.awslambda.models"

    def __init__(self, config):
        self.config = config

    @property
    def physical_resource_id(self) -> str:
        return self.config.function.function_arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Url"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("FunctionUrl", "FunctionArn")

    def get_cfn_attribute(self, attribute_name: str):
        if attribute_name == "FunctionUrl":
            return self.config.url
        if attribute_name == "FunctionArn":
            return self.config.function.function_arn
        raise KeyError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.awslambda.models import lambda_backends

        props = cloudformation_json["Properties"]
        config = {"AuthType": props["AuthType"], "Cors": props.get("Cors"), "InvokeMode": props.get("InvokeMode")}
        backend = lambda_backends[account_id][region_name]
        return cls(backend.create_function_url_config(props["TargetFunctionArn"], config))

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        from moto.awslambda.models import lambda_backends

        backend = lambda_backends[account_id][region_name]
        try:
            backend.delete_function_url_config(cloudformation_json["Properties"]["TargetFunctionArn"])
        except Exception:  # the function went first
            pass

    def is_created(self) -> bool:
        return True


class Subscription(CloudFormationModel):
    """AWS::SNS::Subscription through moto's own Subscribe."""

    __module__ = "moto.sns.models"

    def __init__(self, subscription):
        self.subscription = subscription

    @property
    def physical_resource_id(self) -> str:
        return self.subscription.arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str):
        return self.subscription.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.sns.models import sns_backends

        props = cloudformation_json["Properties"]
        backend = sns_backends[account_id][region_name]
        return cls(backend.subscribe(props["TopicArn"], props["Endpoint"], props["Protocol"]))

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        pass

    def is_created(self) -> bool:
        return True


def with_account_settings(app):
    def wrapped(environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD")
        if path.rstrip("/") == "/2016-08-19/account-settings" and method == "GET":
            body = json.dumps(account_settings(environ)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/privwatch-moto/lambda-deliveries":
            body = json.dumps(DELIVERIES).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/privwatch-moto/lambda-quota":
            if method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                os.environ["MOTO_LAMBDA_CONCURRENCY_QUOTA"] = str(int(environ["wsgi.input"].read(length)))
            elif method == "DELETE":
                os.environ.pop("MOTO_LAMBDA_CONCURRENCY_QUOTA", None)
            body = str(quota()).encode()
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/privwatch-moto/stacksets-access" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            ORGANIZATIONS_ACCESS["status"] = environ["wsgi.input"].read(length).decode().strip()
            start_response("204 No Content", [])
            return [b""]
        if method == "POST" and path == "/":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            if b"Action=DescribeOrganizationsAccess" in body:
                xml = (
                    '<DescribeOrganizationsAccessResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
                    f'<DescribeOrganizationsAccessResult><Status>{ORGANIZATIONS_ACCESS["status"]}</Status>'
                    '</DescribeOrganizationsAccessResult><ResponseMetadata><RequestId>privwatch</RequestId>'
                    '</ResponseMetadata></DescribeOrganizationsAccessResponse>'
                ).encode()
                start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(xml)))])
                return [xml]
        return app(environ, start_response)

    return wrapped


DELIVERIES: list = []
ORGANIZATIONS_ACCESS = {"status": "ENABLED"}


def hand_lambda_targets_over():
    from moto.events.models import Rule
    from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp

    original = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):
        # A schedule rule has no event pattern: in AWS it never matches a put event (moto's empty
        # pattern matches every event).
        if self.scheduled_expression or not self.event_pattern.matches_event(original_event):
            return
        is_lambda = [t["Arn"].split(":")[2] == "lambda" for t in self.targets]
        for target, yes in zip(self.targets, is_lambda):
            if yes:
                event = dict(original_event)
                if isinstance(event.get("time"), (int, float)):
                    event["time"] = iso_8601_datetime_without_milliseconds(utcfromtimestamp(event["time"]))
                DELIVERIES.append({"function": target["Arn"], "rule": self.name, "event": event})
        if not all(is_lambda):
            targets = self.targets
            self.targets = [t for t, yes in zip(targets, is_lambda) if not yes]
            try:
                original(self, original_event, transform_input)
            finally:
                self.targets = targets

    Rule.send_to_targets = send_to_targets


def main() -> None:
    args = sys.argv[1:]
    host = args[args.index("-H") + 1] if "-H" in args else "127.0.0.1"
    port = int(args[args.index("-p") + 1]) if "-p" in args else 5000
    os.environ.setdefault("MOTO_PORT", str(port))
    hand_lambda_targets_over()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, with_account_settings(app), threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
