"""gunicorn settings for the container (bin/start); every value can come from the environment.

https://docs.gunicorn.org/en/stable/settings.html
"""

import os

from backend.observability.log_config import logging_config


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


bind = f"0.0.0.0:{_int('PORT', 8000)}"

# Threads share a process's memory and database connection pool. Two processes
# of four threads suit a 0.25-1 vCPU Fargate task; raise WEB_CONCURRENCY with the
# task's vCPUs (about 2 per vCPU). docs/operations.md says how to tune from metrics.
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", 2)
threads = _int("GUNICORN_THREADS", 4)

# A worker whose main loop sends no heartbeat for this long is restarted. A thread
# stuck in a request does not stop the heartbeat: each wait a request makes has its
# own bound (statement timeout, Redis timeouts, API_BODY_TIMEOUT_SECONDS).
timeout = _int("GUNICORN_TIMEOUT", 30)
# On SIGTERM, finish in-flight requests within this many seconds: shorter than
# the load balancer's deregistration delay and the 30 s ECS allows before SIGKILL.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
# Longer than the load balancer's 60 s idle timeout, so it closes idle
# connections first and never sends a request on a socket closing here.
keepalive = _int("GUNICORN_KEEPALIVE", 75)

# Recycle workers now and then (with jitter, so not all at once) to bound leaks.
# A restart costs a second of CPU loading Django; at 1,000 requests a busy worker
# restarted every few seconds and lost most of its throughput (make bench).
max_requests = _int("GUNICORN_MAX_REQUESTS", 50000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 5000)

# Trust X-Forwarded-* from any peer: only the load balancer can reach the task
# (its security group), and the load balancer's addresses change.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
# One listening socket, opened by the master and shared by the workers. With
# SO_REUSEPORT each worker opens its own, and a worker that exits (killed, or
# recycled after max_requests) resets the connections queued on it; with one
# worker, the port refuses connections until its replacement listens (make drills).
reuse_port = False

# Worker heartbeats on tmpfs, as gunicorn's documentation advises: a container's disk can
# stall them.
worker_tmp_dir = "/dev/shm"  # nosec B108

# gunicorn's own lines in the application's JSON format; the application writes
# the access line (backend/observability/access.py).
accesslog = None
logconfig_dict = logging_config(os.environ.get("LOG_LEVEL", "INFO").upper())

# No runtime control socket: the orchestrator replaces tasks instead of resizing
# them, and the app user has no home directory to put it in.
control_socket_disable = True


def post_worker_init(worker):
    """Once the worker has loaded the application: freeze what it loaded.

    Modules, classes, settings and the URL map live as long as the worker, yet every
    full garbage collection walks them all: about 40 ms of CPU with the request stalled
    behind it (make bench-cpu). Frozen, they are left out of every collection.
    """
    import gc

    gc.freeze()


def worker_exit(server, worker):
    """Before the worker goes: repair a cache invalidation it lost, write its last metrics."""
    from backend.cache import settle_caches
    from backend.observability.access import flush_metrics

    settle_caches()
    flush_metrics()
