"""Where a request came from, for the audit log: a proxy's X-Forwarded-For only if the proxy is trusted."""

from django.test import RequestFactory, override_settings

from timebank.common.middleware import client_ip


def request(remote: str, forwarded: str = ""):
    made = RequestFactory().get("/")
    made.META["REMOTE_ADDR"] = remote
    if forwarded:
        made.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return made


def test_without_trusted_proxies_the_peer_address_counts():
    assert client_ip(request("127.0.0.1", "203.0.113.9")) == "127.0.0.1"


@override_settings(TRUSTED_PROXIES=["10.0.0.2"])
def test_behind_a_trusted_proxy_the_last_untrusted_hop_counts():
    assert client_ip(request("10.0.0.2", "198.51.100.7, 203.0.113.9")) == "203.0.113.9"
    assert client_ip(request("10.0.0.2", "203.0.113.9, 10.0.0.2")) == "203.0.113.9"


@override_settings(TRUSTED_PROXIES=["10.0.0.2"])
def test_an_untrusted_peer_cannot_claim_another_address():
    assert client_ip(request("192.0.2.50", "203.0.113.9")) == "192.0.2.50"
