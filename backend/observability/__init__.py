"""What the service tells its operators: request ids, JSON logs, the access line, EMF metrics.

- `request_id`: the id of each request, its `X-Request-ID` header and its place in log lines.
- `log_config`: the one JSON logging configuration, shared by Django and gunicorn.
- `access`: the middleware that writes one access line per request and measures it.
- `metrics`: CloudWatch Embedded Metric Format records, aggregated per route and interval.
"""
