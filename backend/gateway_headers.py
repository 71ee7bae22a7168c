"""What an API gateway in front of the load balancer tells the service about a request.

Behind API Gateway, a VPC link and a load balancer (infra/), the socket's peer is the load
balancer, X-Forwarded-For holds what the client and the hops made of it, and Host may be
the load balancer's own name. API Gateway writes two headers of the service's own instead,
overwriting whatever the client sent: the caller's address (`API_CLIENT_IP_HEADER`) and
the host name it was asked for (`DJANGO_HOST_HEADER`). Only the gateway reaches the load
balancer, so no client can set them. A request carrying them came through the gateway, so
it gets no readiness report: that is for operators inside the network.

Installed first in MIDDLEWARE only when one of the two settings names a header.
"""

from django.conf import settings

from backend.errors import problem_response
from backend.health import READINESS_PATH


def meta_key(header: str) -> str:
    """`X-Items-Client-Ip` -> `HTTP_X_ITEMS_CLIENT_IP`; empty stays empty."""
    return f"HTTP_{header.upper().replace('-', '_')}" if header else ""


class GatewayHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.client_ip = meta_key(settings.API_CLIENT_IP_HEADER)
        self.host = meta_key(settings.DJANGO_HOST_HEADER)

    def __call__(self, request):
        meta = request.META
        through_the_gateway = False
        if self.client_ip and (address := meta.get(self.client_ip)):
            meta["REMOTE_ADDR"] = address
            meta.pop("HTTP_X_FORWARDED_FOR", None)  # the address above is the whole answer
            through_the_gateway = True
        if self.host and (host := meta.get(self.host)):
            meta["HTTP_HOST"] = host
            through_the_gateway = True
        if through_the_gateway and request.path == READINESS_PATH:
            return problem_response(404, code="not_found", detail="Not found.")
        return self.get_response(request)
