"""The answer to a login from an address that failed too often (django-axes).

django-axes counts failed logins per client address in the database, so every task
behind the load balancer sees the same count; settings.py holds its limits.
"""

from http import HTTPStatus

from axes.helpers import get_cool_off
from django.http import JsonResponse

from backend.errors import problem_response


def lockout_response(request, original_response=None, credentials=None) -> JsonResponse:
    """429 in the service's error shape, with `Retry-After`: the cool-off in seconds.

    The same answer for a form post and a script (django-axes' own answer to a script
    allows every origin); a correct password is refused with it too while the lock lasts.
    """
    cool_off = get_cool_off(request)
    minutes = round(cool_off.total_seconds() / 60)
    response = problem_response(
        HTTPStatus.TOO_MANY_REQUESTS,
        code="login_locked_out",
        detail=f"Too many failed logins from this address; try again in {minutes} minutes.",
    )
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
