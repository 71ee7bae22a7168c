"""API Gateway HTTP API events (payload format 2.0), built as API Gateway sends them.

https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
"""

import base64
import gc
import uuid

API_DOMAIN = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
CLIENT_IP = "203.0.113.7"


def http_api_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
    body: bytes | None = None,
    base64_body: bool = False,
    stage: str = "$default",
    source_ip: str = CLIENT_IP,
    domain: str = API_DOMAIN,
) -> dict:
    """One request as the `$default` route of an HTTP API delivers it to Lambda.

    Header names are lowercase, a repeated header is one comma-joined value, cookies
    travel in their own list, and API Gateway adds the forwarding headers: it appends
    the caller's address to any `X-Forwarded-For` the client sent.
    """
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    sent = {key.lower(): value for key, value in (headers or {}).items()}
    forwarded_for = ", ".join(filter(None, [sent.pop("x-forwarded-for", ""), source_ip]))
    gateway_headers = {
        "host": domain,
        "x-forwarded-for": forwarded_for,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        "x-amzn-trace-id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
        "user-agent": "curl/8.5.0",
        "accept": "*/*",
    }
    if body is not None:
        gateway_headers["content-length"] = str(len(body))
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": gateway_headers | sent,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": gateway_headers["user-agent"],
            },
            "requestId": base64.b64encode(uuid.uuid4().bytes[:10]).decode(),
            "routeKey": "$default",
            "stage": stage,
            "time": "05/Dec/2026:14:00:00 +0000",
            "timeEpoch": 1796479200000,
        },
        "isBase64Encoded": base64_body,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = dict(
            part.split("=", 1) if "=" in part else (part, "") for part in query.split("&")
        )
    if body is not None:
        event["body"] = base64.b64encode(body).decode() if base64_body else body.decode()
    return event


def response_body(answer: dict) -> bytes:
    """The body of a Lambda answer to API Gateway, decoded from base64 when it is."""
    if answer.get("isBase64Encoded"):
        return base64.b64decode(answer["body"])
    return answer["body"].encode()


def load_handler():
    """`backend.lambda_handler`, imported as Lambda's runtime imports it.

    Call it after the static files are collected (the application finds them at
    import). The import freezes the loaded objects out of the garbage collector's
    sight, as production wants; the test process gets them back.
    """
    from backend import lambda_handler

    gc.unfreeze()
    return lambda_handler
