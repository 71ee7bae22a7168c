"""Conditional requests for one item (RFC 9110, section 13): validators and preconditions.

An item's ETag depends on its id and version alone, so a cache hit that knows both can
answer `If-None-Match` without reading the row. The pure helpers at the top build and
compare validators; `write_guard` holds the row lock that turns a passed `If-Match` into
an atomic check-and-write.
"""

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils.http import http_date, parse_etags, parse_http_date_safe

from backend.errors import PreconditionFailed, PreconditionRequired

ANY = "*"


def etag_for(item_id: int, version: int) -> str:
    """Return the strong ETag of an item at a version, quotes included."""
    return f'"{item_id}-{version}"'


def last_modified_for(updated_at: datetime) -> str:
    """Return `updated_at` as an HTTP date (whole seconds)."""
    return _http_date(math.floor(updated_at.timestamp()))


@functools.lru_cache(maxsize=4096)
def _http_date(epoch_seconds: int) -> str:
    # Formatting a date costs a cache hit more than its ETag and headers together;
    # reads of the same items ask for the same few dates over and over.
    return http_date(epoch_seconds)


def item_headers(item_id: int, version: int, updated_at: datetime) -> dict[str, str]:
    """Return the headers of a response carrying an item (or a 304 for one).

    Its validators, and `Cache-Control: no-cache`: without it, a browser may reuse a
    response that has `Last-Modified` for a while without asking (RFC 9111, 4.2.2),
    and show an item older than a committed write. With it, every reuse is
    revalidated, which the ETag makes cheap.
    """
    return {
        "ETag": etag_for(item_id, version),
        "Last-Modified": last_modified_for(updated_at),
        "Cache-Control": "no-cache",
    }


def _is_weak(etag: str) -> bool:
    return etag.startswith("W/")


def _opaque(etag: str) -> str:
    return etag.removeprefix("W/")


def if_match_passes(header: str, current_etag: str) -> bool:
    """Evaluate `If-Match` with the strong comparison: a weak tag never matches."""
    etags = parse_etags(header)
    if etags == [ANY]:
        return True
    return any(not _is_weak(etag) and etag == current_etag for etag in etags)


def if_none_match_passes(header: str, current_etag: str) -> bool:
    """Evaluate `If-None-Match` with the weak comparison; False means "not modified"."""
    etags = parse_etags(header)
    if etags == [ANY]:
        return False
    return all(_opaque(etag) != _opaque(current_etag) for etag in etags)


def is_not_modified(request, *, etag: str, updated_at: datetime | None = None) -> bool:
    """Whether a GET of this representation should be answered `304 Not Modified`.

    `If-None-Match` wins; `If-Modified-Since` counts only without it (RFC 9110, 13.2.2),
    and only when `updated_at` is known.
    """
    # META rather than request.headers: this runs on every cache hit, and building
    # the headers mapping costs more than the rest of this function.
    if (if_none_match := request.META.get("HTTP_IF_NONE_MATCH")) is not None:
        return not if_none_match_passes(if_none_match, etag)
    if (if_modified_since := request.META.get("HTTP_IF_MODIFIED_SINCE")) is None:
        return False
    since = parse_http_date_safe(if_modified_since)
    if since is None or updated_at is None:
        return False
    return int(updated_at.timestamp()) <= since


def check_if_match(request, item) -> None:
    """Raise 412 when `If-Match` does not match the item as read, 428 when it is required.

    Runs before the request body is validated: a stale precondition is 412 whatever
    the body says (RFC 9110, 13.2.1).
    """
    header = request.headers.get("If-Match")
    if header is None:
        if settings.API_REQUIRE_IF_MATCH:
            raise PreconditionRequired()
        return
    if not if_match_passes(header, etag_for(item.pk, item.version)):
        raise PreconditionFailed()


@contextmanager
def write_guard(request, item) -> Iterator[None]:
    """Lock the row and hold it through the write when the request carried `If-Match`.

    `check_if_match` judged the version read earlier; under the lock `If-Match` is judged
    again against the row as it is now, so a write committed since that changed the ETag
    gets this request a 412 with nothing written, and two clients sending the same ETag
    cannot both succeed. `*` holds while the item exists (RFC 9110, 13.1.1).
    """
    header = request.headers.get("If-Match")
    if header is None:
        yield
        return
    with transaction.atomic():
        locked = type(item).objects.select_for_update().filter(pk=item.pk)
        current = locked.values_list("version", flat=True).first()
        if current is None or not if_match_passes(header, etag_for(item.pk, current)):
            raise PreconditionFailed()
        yield
