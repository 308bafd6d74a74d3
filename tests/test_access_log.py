"""One access-log line per request, with no tokens: no query strings, no share-link tokens."""

import logging

from app.web.middlewares import ACCESS_LINES


async def test_access_lines_carry_no_credentials(client, member, caplog):
    caplog.set_level(logging.INFO, logger="sonora.access")
    ACCESS_LINES.flush()
    await client.get("/api/health?token=query-secret")
    await client.get("/s/share-token-secret")
    await client.get("/api/user/me", headers=member.headers)
    ACCESS_LINES.flush()
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "sonora.access")
    lines = text.splitlines()
    assert any(line.endswith("user=-") and "GET /api/health 200" in line for line in lines)
    assert any("GET /s/… " in line for line in lines)
    assert any("GET /api/user/me 200" in line and line.endswith(f"user={member.id}") for line in lines)
    for secret in ("query-secret", "share-token-secret", member.access):
        assert secret not in text
