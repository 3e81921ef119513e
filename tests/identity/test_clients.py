"""API clients: secrets shown once and stored hashed, client credentials, rotation overlap, revocation."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import timedelta

import pytest

from audit.events import Actor, ActorKind
from core.clock import FixedClock
from core.errors import InvalidInputError
from identity import tokens
from identity.clients import ip_allowed, parse_networks
from identity.errors import InvalidClientError, InvalidTokenError, OAuthError

OPERATOR = Actor(id="operator:test", kind=ActorKind.SYSTEM)


class TestCreate:
    def test_secret_is_returned_once_and_stored_hashed(self, ident: Callable) -> None:  # type: ignore[type-arg]
        """The secret is in the creation result only; the listing never shows it."""
        with ident() as identity:
            issued = identity.clients.create("dialer", ["contacts:write"], actor=OPERATOR)
        assert issued.secret.startswith("tzc_")
        assert issued.client.id.startswith("cl_")
        assert issued.secret not in repr(issued)
        with ident() as identity:
            listed = [c.to_json() for c in identity.clients.list()]
        assert issued.secret not in str(listed)
        assert listed[0]["scopes"] == ["contacts:write"]
        assert listed[0]["live_secrets"] == 1

    @pytest.mark.parametrize(("scopes", "purposes", "ips"), [
        (["subjects:everything"], None, None), (["audit:read"], ["Not A Purpose"], None),
        (["audit:read"], None, ["10.0.0.0/33"]),
    ])
    def test_bad_scopes_purposes_or_networks_are_refused(self, ident: Callable, scopes: list[str],  # type: ignore[type-arg]
                                                         purposes: list[str] | None, ips: list[str] | None) -> None:
        """Unknown scopes, malformed purposes and invalid CIDRs are refused."""
        with pytest.raises(InvalidInputError), ident() as identity:
            identity.clients.create("crm", scopes, purposes=purposes, ip_allowlist=ips, actor=OPERATOR)


class TestClientCredentials:
    def test_token_carries_the_requested_scopes(self, ident: Callable) -> None:  # type: ignore[type-arg]
        """A token gets all the client's scopes by default, or the subset requested; more is invalid_scope."""
        with ident() as identity:
            issued = identity.clients.create("crm", ["audit:read", "subjects:read-masked"],
                                             purposes=["debt_collection"], actor=OPERATOR)
        with ident() as identity:
            full = identity.clients.issue_token(issued.client.id, issued.secret)
            part = identity.clients.issue_token(issued.client.id, issued.secret, scope="audit:read")
        assert full.to_json()["scope"] == "audit:read subjects:read-masked"
        assert full.to_json()["expires_in"] == 900
        assert full.to_json()["token_type"] == "Bearer"
        with ident() as identity:
            principal = identity.resolve_bearer(part.token, source_ip="192.0.2.1")
        assert principal.scopes == frozenset({"audit:read"})
        assert principal.allowed_purposes == frozenset({"debt_collection"})
        with pytest.raises(OAuthError) as info, ident() as identity:
            identity.clients.issue_token(issued.client.id, issued.secret, scope="audit:read keys:rotate")
        assert info.value.error == "invalid_scope"

    def test_wrong_secret_is_invalid_client_and_audited(self, ident: Callable,  # type: ignore[type-arg]
                                                        audit_types: Callable[[], list[str]]) -> None:
        """A wrong secret or unknown client is invalid_client (401); the known client's failure is audited."""
        with ident() as identity:
            issued = identity.clients.create("crm", ["audit:read"], actor=OPERATOR)
        for client_id in (issued.client.id, "cl_unknown"):
            with pytest.raises(InvalidClientError) as info, ident() as identity:
                identity.clients.issue_token(client_id, "tzc_wrong")
            assert info.value.status == 401
            assert info.value.extra["error"] == "invalid_client"
        assert audit_types().count("identity.login_failed") == 1

    def test_client_secret_is_compared_with_compare_digest(self, ident: Callable,  # type: ignore[type-arg]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
        """Checking a client secret goes through hmac.compare_digest with the stored hash."""
        with ident() as identity:
            issued = identity.clients.create("crm", ["audit:read"], actor=OPERATOR)
        calls: list[tuple[bytes, bytes]] = []
        real = hmac.compare_digest
        monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
        with ident() as identity:
            identity.clients.issue_token(issued.client.id, issued.secret)
        expected = tokens.token_hash(issued.secret).encode()
        assert (expected, expected) in calls

    def test_access_token_expires(self, ident: Callable, clock: FixedClock) -> None:  # type: ignore[type-arg]
        """An access token stops working after 15 minutes."""
        with ident() as identity:
            issued = identity.clients.create("crm", ["audit:read"], actor=OPERATOR)
        with ident() as identity:
            token = identity.clients.issue_token(issued.client.id, issued.secret).token
        clock.advance(timedelta(minutes=15))
        with pytest.raises(InvalidTokenError), ident() as identity:
            identity.resolve_bearer(token, source_ip=None)

    def test_ip_allow_list_applies_to_token_and_use(self, ident: Callable) -> None:  # type: ignore[type-arg]
        """With an allow-list, the token endpoint and every request must come from an allowed address."""
        with ident() as identity:
            issued = identity.clients.create("field app", ["contacts:write"], ip_allowlist=["10.20.0.0/16"],
                                             actor=OPERATOR)
        with pytest.raises(InvalidClientError), ident() as identity:
            identity.clients.issue_token(issued.client.id, issued.secret, source_ip="192.0.2.7")
        with ident() as identity:
            token = identity.clients.issue_token(issued.client.id, issued.secret, source_ip="10.20.3.4").token
        with ident() as identity:
            identity.resolve_bearer(token, source_ip="10.20.9.9")
        for elsewhere in ("192.0.2.7", None, "testclient"):
            with pytest.raises(InvalidTokenError), ident() as identity:
                identity.resolve_bearer(token, source_ip=elsewhere)


class TestRotationAndRevocation:
    def test_old_secret_works_during_the_overlap_only(self, ident: Callable,  # type: ignore[type-arg]
                                                      clock: FixedClock) -> None:
        """After rotation both secrets work for the overlap period; then only the new one."""
        with ident() as identity:
            issued = identity.clients.create("crm", ["audit:read"], actor=OPERATOR)
        with ident() as identity:
            rotated = identity.clients.rotate(issued.client.id, overlap=timedelta(hours=2), actor=OPERATOR)
        assert rotated.secret != issued.secret
        assert rotated.previous_secrets_expire_at == clock.now() + timedelta(hours=2)
        clock.advance(timedelta(hours=1, minutes=59))
        with ident() as identity:
            identity.clients.issue_token(issued.client.id, issued.secret)
            identity.clients.issue_token(issued.client.id, rotated.secret)
        clock.advance(timedelta(minutes=1))
        with pytest.raises(InvalidClientError), ident() as identity:
            identity.clients.issue_token(issued.client.id, issued.secret)
        with ident() as identity:
            identity.clients.issue_token(issued.client.id, rotated.secret)

    def test_revocation_stops_tokens_and_secrets(self, ident: Callable,  # type: ignore[type-arg]
                                                 audit_types: Callable[[], list[str]]) -> None:
        """A revoked client's live tokens and secrets stop working at once; it is audited."""
        with ident() as identity:
            issued = identity.clients.create("crm", ["audit:read"], actor=OPERATOR)
        with ident() as identity:
            token = identity.clients.issue_token(issued.client.id, issued.secret).token
        with ident() as identity:
            identity.clients.revoke(issued.client.id, actor=OPERATOR)
        with pytest.raises(InvalidTokenError), ident() as identity:
            identity.resolve_bearer(token, source_ip=None)
        with pytest.raises(InvalidClientError), ident() as identity:
            identity.clients.issue_token(issued.client.id, issued.secret)
        assert "identity.client_revoked" in audit_types()


class TestNetworks:
    def test_ip_allowed(self) -> None:
        """No list allows everything; a list allows only addresses in its networks (v4 and v6)."""
        nets = parse_networks(["10.0.0.0/8", "2001:db8::/32"])
        assert ip_allowed(None, None)
        assert ip_allowed(nets, "10.1.2.3")
        assert ip_allowed(nets, "2001:db8::1")
        assert not ip_allowed(nets, "11.0.0.1")
        assert not ip_allowed(nets, None)
        assert not ip_allowed(nets, "host")
