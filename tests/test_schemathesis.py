"""schemathesis against the OpenAPI description (issue 10): every operation, as a member and as an
admin, with a bounded number of generated requests each; any 5xx, or any answer the description
does not allow (status code, content type, response schema where one is given), fails.

The app runs on a real port in a thread of its own, on a database, data directory and namespace
of its own (created here, dropped afterwards), so what the fuzzer writes never reaches other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from conftest import MYSQL_URL, RUN_ID, _admin_sql, make_config
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support import Served

from app.main import create_app
from app.web import keys

MAX_EXAMPLES = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Operations that would end the session the run uses, or lock its accounts: fuzzed as the
# anonymous caller only (their input handling is what matters; a 401 is in the description).
SESSION_ENDERS = {"api_logout", "api_logout_all", "api_password_change", "api_user_delete",
                  "api_user_role", "api_user_disabled"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    name = f"sonora_test_{RUN_ID}_fuzz"
    config = make_config(f"{MYSQL_URL}/{name}", tmp_path_factory.mktemp("fuzz"), amqp_url="",
                         stream_pace=0.0)
    try:
        with Served(create_app(config)) as server:
            yield server
    finally:
        asyncio.run(_admin_sql(f"DROP DATABASE IF EXISTS `{name}`"))


def _account(served: Served, admin: bool) -> dict[str, str]:
    n = "a" if admin else "m"
    body = {"email": f"fuzz{n}{RUN_ID}@example.com", "username": f"fuzz{n}{RUN_ID}",
            "password": "correct horse 1"}
    resp = requests.post(served.url + "/api/auth/register", json=body, timeout=30)
    assert resp.status_code == 201, resp.text
    data = resp.json()
    if admin:
        async def promote() -> None:
            await served.app[keys.DB].execute("UPDATE users SET role = 'admin' WHERE id = %s",
                                              (data["user"]["id"],))
            await served.app[keys.AUTH].authstate.forget_user(data["user"]["id"])
        served.call(promote())
    return {"Authorization": f"Bearer {data['access_token']}"}


def _seed(served: Served, admin: dict[str, str]) -> None:
    """A song (so ids 1… name something), a playlist, an image."""
    from conftest import make_audio

    path = make_audio(served.app[keys.CONFIG].data_dir, "mp3", title="Fuzz", artist="Fuzz",
                      album="Fuzz")
    with open(path, "rb") as f:
        resp = requests.post(served.url + "/api/song", headers=admin,
                             files={"file": (path.name, f, "audio/mpeg")}, timeout=60)
    assert resp.status_code == 201, resp.text
    resp = requests.post(served.url + "/api/playlist", headers=admin, json={"name": "fuzz"},
                         timeout=30)
    assert resp.status_code == 201, resp.text


def _checker(strategy: Any, session: requests.Session, caller: dict[str, str] | None,
             counted: list[int]) -> Any:
    """A Hypothesis test sending each generated case and checking the answer."""

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        counted[0] += 1
        case.call_and_validate(session=session, headers=caller, checks=CHECKS, timeout=30)

    return check


def _run(served: Served, headers: dict[str, str] | None, label: str,
         calls: list[int]) -> list[str]:
    spec = requests.get(served.url + "/api/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(spec)
    schema.config.update(base_url=served.url)
    failures: list[str] = []
    session = requests.Session()
    counted = calls
    for result in schema.get_all_operations():
        operation = result.ok()
        op_id = operation.definition.raw.get("operationId", operation.label)
        as_caller = None if op_id in SESSION_ENDERS else headers
        ids = {p["name"]: 1 for p in operation.definition.raw.get("parameters", [])
               if p.get("in") == "path" and p["name"].endswith("id")}
        variants: list[tuple[str, Any]] = [("positive", operation.as_strategy())]
        raw = operation.definition.raw
        if raw.get("parameters") or "requestBody" in raw:  # else there is nothing to get wrong
            variants.append(
                ("negative", operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)))
        if ids:  # ids of the seeded song, album, artist, playlist and image: deeper paths
            variants.append(("seeded ids", operation.as_strategy(path_parameters=ids)))
        for mode, strategy in variants:
            check = _checker(strategy, session, as_caller, counted)
            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported together
                failures.append(f"[{label}, {mode}] {operation.label}: {str(exc)[:1500]}")
    return failures


def test_the_api_answers_as_it_is_described(served: Served) -> None:
    admin = _account(served, admin=True)
    member = _account(served, admin=False)
    _seed(served, admin)
    calls = [0]
    failures = _run(served, member, "member", calls) + _run(served, admin, "admin", calls)
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
    assert calls[0] > 500  # the run really sent requests, for every operation
    # The accounts the run used still work: nothing it sent broke the app.
    with contextlib.closing(requests.Session()) as s:
        assert s.get(served.url + "/api/user/me", headers=member, timeout=30).status_code == 200
