"""Every admin action lands in the audit log, shown at /admin/audit (SPEC 7)."""

from __future__ import annotations

import asyncio
import re

from conftest import make_admin, make_config, register, unique
from support import eventually

from app.main import create_app
from app.web import keys


async def test_user_and_catalogue_actions_are_audited(aiohttp_client, database_url, tmp_path):
    # No broker: `serve` runs the audit consumer itself.
    client = await aiohttp_client(create_app(make_config(database_url, tmp_path, amqp_url="")))
    admin = await make_admin(client, await register(client))
    member = await register(client)
    h = admin.headers
    assert (await client.put(f"/api/user/{member.id}/role", json={"role": "admin"}, headers=h)).status == 200
    assert (await client.put(f"/api/user/{member.id}/disabled", json={"disabled": True}, headers=h)).status == 200
    name = unique("Audited <b>")
    assert (await client.post("/api/artist", json={"name": name}, headers=h)).status == 201
    assert (await client.delete(f"/api/user/{member.id}", headers=h)).status == 204
    db = client.app[keys.DB]

    async def recorded() -> bool:
        n = await db.fetchval("SELECT COUNT(*) FROM audit_log WHERE actor_id = %s", (admin.id,))
        return int(n) >= 4

    await eventually(recorded)
    rows = await db.fetchall(
        "SELECT action, target_type, target_id, actor_username FROM audit_log WHERE actor_id = %s"
        " ORDER BY id", (admin.id,))
    assert [r["action"] for r in rows] == [
        "user.role_changed", "user.disabled", "artist.created", "user.deleted"]
    assert all(r["actor_username"] == admin.username for r in rows)
    # The page shows them, escaped, to admins only.
    login = await client.post("/api/auth/login", json={"username": admin.username, "password": admin.password})
    assert login.status == 200
    client.session.cookie_jar.update_cookies({"sonora_access": (await login.json())["access_token"]})
    page = await client.get("/admin/audit")
    text = await page.text()
    assert page.status == 200
    assert "user.role_changed" in text and "artist.created" in text
    assert "Audited <b>" not in text and "Audited &lt;b&gt;" in text
    only_users = await (await client.get("/admin/audit?kind=user.")).text()
    assert "artist.created" not in only_users and "user.deleted" in only_users
    client.session.cookie_jar.clear()
    other = await register(client)
    client.session.cookie_jar.update_cookies({"sonora_access": other.access})
    assert (await client.get("/admin/audit")).status == 403
    assert re.search(r"user\.deleted", text)


async def test_catalogue_writes_during_a_broker_outage_are_applied_once_after(
    aiohttp_client, database_url, tmp_path
):
    from conftest import AMQP_URL
    from tcpproxy import TcpProxy

    from app.events.worker import Worker

    async with TcpProxy("127.0.0.1", 5672) as proxy:
        config = make_config(database_url, tmp_path, amqp_url=proxy.url("amqp", "guest:guest", "/"))
        client = await aiohttp_client(create_app(config))
        admin = await make_admin(client, await register(client))
        proxy.cut("refuse")
        created = []
        for n in range(5):
            resp = await client.post("/api/artist", json={"name": unique(f"Outage {n} ")}, headers=admin.headers)
            assert resp.status == 201, "catalogue writes succeed while the broker is away"
            created.append((await resp.json())["id"])
        db = client.app[keys.DB]
        marks = ", ".join(["%s"] * len(created))
        waiting = await db.fetchval(
            "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL AND type = 'admin.artist.created'"
            " AND payload LIKE %s", (f'%"actor_id":{admin.id},%',))
        assert waiting == 5
        proxy.restore()
        worker = Worker(config.replace(amqp_url=AMQP_URL))
        await worker.start()
        try:
            async def applied() -> bool:
                n = await db.fetchval(
                    f"SELECT COUNT(*) FROM audit_log WHERE action = 'artist.created' AND target_id IN ({marks})",
                    created)
                return int(n) >= 5

            await eventually(applied, timeout=30)
            await asyncio.sleep(0.5)
            rows = await db.fetchval(
                f"SELECT COUNT(*) FROM audit_log WHERE action = 'artist.created' AND target_id IN ({marks})",
                created)
            assert rows == 5
        finally:
            await worker.stop()
