"""App passwords (SPEC 13): one secret per device for the Subsonic API at /rest, shown once,
listable and revocable by its owner. The account's bcrypt password is never accepted there:
token authentication (`t = md5(secret + s)`) needs a secret the server can read back, and apps
authenticate every cover and stream request, which bcrypt would make slow.

Stored so that a database dump reveals no secret (sql/0009): a keyed hash finds the app password
of a `p` or an `apiKey`, and the secret itself is kept encrypted for token authentication, both
under keys derived from the server's secret key (`SecretBox`).

Checks are remembered for a moment in the auth-state cache's in-process memory (as access tokens
are: `AuthStateCache.recall`), so an app syncing a library does not read MySQL per request; every
change that must end access (revoking, disabling, deleting, a role change) drops that memory in
this process, and other processes trust what they remember for at most `authstate.RECENT_TTL`
seconds. Failures are rate-limited with the login budgets (SPEC 5.4) under keys of their own, so a
misconfigured phone does not lock its owner out of the web pages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.adapters.kv import KeyValue
from app.config import Config
from app.errors import Conflict, Forbidden, NotFound, Unauthenticated
from app.repos.app_passwords import AppPasswordRepo
from app.repos.db import Database, DatabaseUnavailable, Row
from app.services import validation as v
from app.services.authstate import AuthStateCache
from app.services.ratelimit import RateLimiter
from app.services.types import AppPassword, NewAppPassword

log = logging.getLogger(__name__)

# Lower-case letters and digits without the look-alikes (0/o, 1/l/i): read off a screen and typed
# on a phone. 25 of them carry 124 bits; dashes every five make them easier to copy by eye.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
GROUPS, GROUP_LENGTH = 5, 5
MAX_PER_USER = 50  # token authentication tries each of an account's app passwords
MAX_SECRET = 256  # longer than any app password: refused without a database read
MAX_SALT = 1024  # any salt an app makes; past this it is not a salt but a payload
LABEL_MAX = 64
CLIENT_MAX = 64
TOUCH_EVERY = 60.0  # last_used_at and last_client are written at most this often per app password
NONCE = 12
WRONG = "Wrong username or app password"
DISABLED = "This account is disabled"


def new_secret() -> str:
    """A fresh app password: 25 random characters of ALPHABET in dash-separated groups of five."""
    return "-".join(
        "".join(secrets.choice(ALPHABET) for _ in range(GROUP_LENGTH)) for _ in range(GROUPS)
    )


def _derive(server_secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        server_secret.encode()
    )


class SecretBox:
    """The keys derived from the server's secret key, and what is done with them. `purpose`
    names what the secrets are and `owner` the kind of row a box is bound to: each purpose has
    keys of its own (app passwords: "app-password" of a "user"; share links: "share-link" of a
    "playlist")."""

    def __init__(self, server_secret: str, purpose: str = "app-password", owner: str = "user"
                 ) -> None:
        self._lookup_key = _derive(server_secret, f"sonora {purpose} lookup v1".encode())
        self._aead = AESGCM(_derive(server_secret, f"sonora {purpose} encryption v1".encode()))
        self._bound_to = f"sonora {purpose} of {owner}"

    def lookup(self, secret: str) -> str:
        """The keyed hash an app password is found by (64 hex digits)."""
        return hmac.new(self._lookup_key, secret.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()

    def _owner(self, owner_id: int) -> bytes:
        # Bound to its owner: a box copied onto another row does not open.
        return f"{self._bound_to} {owner_id}".encode()

    def seal(self, owner_id: int, secret: str) -> str:
        """The secret encrypted for its owner: base64 of the nonce, ciphertext and tag."""
        nonce = secrets.token_bytes(NONCE)
        sealed = nonce + self._aead.encrypt(nonce, secret.encode(), self._owner(owner_id))
        return base64.b64encode(sealed).decode()

    def open(self, owner_id: int, box: str) -> str | None:
        """The secret in `box`, or None when it does not open (another key or owner, tampered)."""
        try:
            raw = base64.b64decode(box, validate=True)
            return self._aead.decrypt(raw[:NONCE], raw[NONCE:], self._owner(owner_id)).decode()
        except (InvalidTag, ValueError, binascii.Error):
            return None

    def memo_key(self, *parts: str) -> str:
        """The key a verified credential is remembered under in memory: a digest, not the secret."""
        text = "\x00".join(parts).encode("utf-8", "surrogatepass")
        return "rest:" + hmac.new(self._lookup_key, text, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AppCaller:
    """Who a /rest request authenticated as: the account, and the app password it used."""

    user_id: int
    username: str
    role: str
    app_password_id: int

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _listed(row: Row) -> AppPassword:
    return {
        "id": int(row["id"]),
        "label": row["label"],
        "created_at": v.rfc3339(row["created_at"]),
        "last_used_at": v.rfc3339(row["last_used_at"]),
        "last_client": row["last_client"],
    }


def token_of(secret: str, salt: str) -> str:
    """Subsonic's token: md5(secret + salt) in lower-case hex (the protocol's, not a choice)."""
    return hashlib.md5((secret + salt).encode("utf-8", "surrogatepass"),
                       usedforsecurity=False).hexdigest()


class AppPasswordService:
    """Making, listing and revoking app passwords, and checking the credentials apps send."""

    def __init__(self, db: Database, kv: KeyValue, config: Config, authstate: AuthStateCache
                 ) -> None:
        self.repo = AppPasswordRepo(db)
        self.config = config
        self.box = SecretBox(config.secret_key)
        self.limits = RateLimiter(kv, config.namespace)
        self.authstate = authstate
        self._touched: dict[int, float] = {}

    # -- the owner's list

    async def for_user(self, user_id: int) -> list[AppPassword]:
        """The user's app passwords, oldest first, without their secrets."""
        return [_listed(row) for row in await self.repo.of_user(user_id)]

    async def create(self, user_id: int, body: dict[str, Any]) -> NewAppPassword:
        """A new app password labelled `body["label"]`; its secret is in this answer only."""
        errors = v.Fields()
        label = v.clean_text(body.get("label"), "label", errors, min_len=1, max_len=LABEL_MAX)
        errors.check()
        if await self.repo.count(user_id) >= MAX_PER_USER:
            raise Conflict(f"You have {MAX_PER_USER} app passwords already; revoke one first")
        secret = new_secret()
        new_id = await self.repo.insert(user_id, label, self.box.lookup(secret),
                                        self.box.seal(user_id, secret))
        row = await self.repo.get(new_id)
        if row is None:  # revoked by its owner between the two statements
            raise NotFound("No such app password")
        return {"id": new_id, "label": row["label"], "password": secret,
                "created_at": v.rfc3339(row["created_at"])}

    async def get(self, user_id: int, app_password_id: int) -> AppPassword:
        """One of the user's app passwords; 404 for anyone else's."""
        row = await self.repo.get(app_password_id)
        if row is None or int(row["user_id"]) != user_id:
            raise NotFound("No such app password")
        return _listed(row)

    async def revoke(self, user_id: int, app_password_id: int) -> None:
        """Delete one of the user's app passwords: it fails from the next request on. 404 for
        anyone else's (as for one that does not exist)."""
        if not await self.repo.delete(user_id, app_password_id):
            raise NotFound("No such app password")
        self._touched.pop(app_password_id, None)
        self.authstate.forget_recent()

    # -- checking what an app sends

    async def by_password(self, username: str, password: str, ip: str, client: str) -> AppCaller:
        """`u` + `p` (already decoded from `enc:`): the app password `p` of account `u`."""
        account = username.lower()
        memo = self.box.memo_key("p", account, password)
        known = self._recall(memo)
        if known is not None:
            return await self._used(known, client)
        counts = await self._guard(ip, account)
        row = None
        if 0 < len(password) <= MAX_SECRET:
            row = await self.repo.by_lookup(self.box.lookup(password))
        if row is None or row["username_canon"] != account:
            await self._failed(ip, account)
        return await self._succeeded(row, memo, ip, account, counts, client)

    async def by_token(self, username: str, token: str, salt: str, ip: str, client: str
                       ) -> AppCaller:
        """`u` + `t` + `s`: an app password of account `u` whose md5(secret + s) is `t`."""
        account = username.lower()
        token = token.lower()
        memo = self.box.memo_key("t", account, token, salt)
        known = self._recall(memo)
        if known is not None:
            return await self._used(known, client)
        counts = await self._guard(ip, account)
        match = None
        if len(token) == 32 and len(salt) <= MAX_SALT:
            for row in await self.repo.boxes_of(account):
                secret = self.box.open(int(row["user_id"]), row["secret_box"])
                if secret is not None and hmac.compare_digest(token_of(secret, salt), token):
                    match = row
                    break
        if match is None:
            await self._failed(ip, account)
        return await self._succeeded(match, memo, ip, account, counts, client)

    async def by_api_key(self, key: str, ip: str, client: str) -> AppCaller:
        """`apiKey` (OpenSubsonic's apiKeyAuthentication): the app password itself."""
        memo = self.box.memo_key("k", key)
        known = self._recall(memo)
        if known is not None:
            return await self._used(known, client)
        counts = await self._guard(ip, None)
        row = None
        if 0 < len(key) <= MAX_SECRET:
            row = await self.repo.by_lookup(self.box.lookup(key))
        if row is None:
            await self._failed(ip, None)
        return await self._succeeded(row, memo, ip, None, counts, client)

    def _recall(self, memo: str) -> AppCaller | None:
        known = self.authstate.recall(memo)
        return known if isinstance(known, AppCaller) else None

    def _budgets(self, ip: str, account: str | None) -> list[tuple[str, int]]:
        # The login's three budgets (SPEC 5.4) under /rest's own keys; an API key names no
        # account, so only its address is counted.
        config = self.config
        budgets = [(f"rl:rest:ip:{ip}", config.login_max_failures_address)]
        if account is not None:
            budgets += [
                (f"rl:rest:acct-ip:{account}:{ip}", config.login_max_failures_account_address),
                (f"rl:rest:acct:{account}", config.login_max_failures_account),
            ]
        return budgets

    async def _guard(self, ip: str, account: str | None) -> list[int]:
        return await self.limits.ensure_all_below(self._budgets(ip, account))

    async def _failed(self, ip: str, account: str | None) -> NoReturn:
        for key, _ in self._budgets(ip, account):
            await self.limits.hit(key, self.config.login_window_seconds)
        raise Unauthenticated(WRONG, error="invalid_credentials")

    async def _succeeded(self, row: Row, memo: str, ip: str, account: str | None,
                         counts: list[int], client: str) -> AppCaller:
        if row["disabled"]:
            raise Forbidden(DISABLED)
        # The owner got in: their own failures from this address and overall start over (as a
        # login does); read in the same round trip as the check, so reset only when there were.
        for (key, _), count in list(zip(self._budgets(ip, account), counts, strict=True))[1:]:
            if count:
                await self.limits.reset(key)
        caller = AppCaller(user_id=int(row["user_id"]), username=row["username"],
                           role=row["role"], app_password_id=int(row["id"]))
        # Trusted again without a check for authstate.RECENT_TTL seconds (the expiry given only
        # caps that), unless something that must end access drops it first.
        self.authstate.remember(memo, caller, int(time.time()) + 60)
        return await self._used(caller, client)

    async def _used(self, caller: AppCaller, client: str) -> AppCaller:
        """Record when and by which client an app password was used, at most once a minute."""
        now = time.monotonic()
        last = self._touched.get(caller.app_password_id)
        if last is None or now - last >= TOUCH_EVERY:
            if len(self._touched) > 10_000:
                self._touched.clear()
            self._touched[caller.app_password_id] = now
            # Shown on the /me page: printable characters only (escaped there all the same).
            name = "".join(ch for ch in client[:CLIENT_MAX * 4] if ch.isprintable())[:CLIENT_MAX]
            try:
                await self.repo.touch(caller.app_password_id, name)
            except DatabaseUnavailable:  # bookkeeping: never a reason to refuse the request
                log.warning("could not record the use of app password %s",
                            caller.app_password_id)
        return caller
