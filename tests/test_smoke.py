from conftest import register


async def test_register_login_me(client):
    acct = await register(client, display_name="Ada")
    assert acct.user["display_name"] == "Ada"
    resp = await client.get("/api/user/me", headers=acct.headers)
    assert resp.status == 200
    me = await resp.json()
    assert me["username"] == acct.username and me["email"].endswith("@example.com")
    resp = await client.post("/api/auth/login", json={"username": acct.username.upper(), "password": acct.password})
    assert resp.status == 200


async def test_health(client):
    resp = await client.get("/api/health")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["dependencies"]["database"]["status"] == "up"
    assert body["dependencies"]["cache"]["backend"] == "redis"
    assert body["dependencies"]["broker"]["status"] == "up"
