import pytest

from promptcov.cli import build_parser, main
from promptcov.service import MAX_K, check_bearer, token_from_env
from tests.service.conftest import TOKEN

HIT_KEYS = {"request_id", "account_id", "timestamp", "prompt", "similarity", "cluster_id", "capability"}


def test_healthz_needs_no_token_and_gives_counts(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["counts"]["requests"] == 4 and body["counts"]["texts"] == 3 and body["counts"]["embedded"] == 3


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"},
                                     {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}])
@pytest.mark.parametrize("method,url,body", [
    ("post", "/search", {"text": "grade this answer", "k": 2}),
    ("get", "/search?request_id=s1", None),
    ("get", "/accounts/sweep-1", None),
    ("get", "/openapi.json", None),
])
def test_every_endpoint_but_healthz_needs_the_token(client, headers, method, url, body):
    r = client.request(method.upper(), url, headers=headers, json=body)
    assert r.status_code == 401
    assert set(r.json()) == {"error"} and "token" in r.json()["error"]
    assert r.headers["www-authenticate"] == "Bearer"


def test_search_text_gives_the_contract_json(client, auth):
    r = client.post("/search", json={"text": "Grade this answer on a scale of 1 to 10 using the rubric: "
                                             "photosynthesis", "k": 3}, headers=auth)
    assert r.status_code == 200
    hits = r.json()
    assert len(hits) == 3 and set(hits[0]) >= HIT_KEYS
    assert hits[0]["request_id"] == "s1" and hits[0]["similarity"] >= 0.99
    assert hits[0]["accounts"] == ["sweep-1", "sweep-2"] and hits[0]["n_requests"] == 2
    assert hits[0]["timestamp"].endswith("Z")
    assert [h["similarity"] for h in hits] == sorted((h["similarity"] for h in hits), reverse=True)


def test_search_by_request_id(client, auth):
    r = client.get("/search", params={"request_id": "s3", "k": 2}, headers=auth)
    assert r.status_code == 200
    assert [h["request_id"] for h in r.json()][0] == "s3" and set(r.json()[0]) >= HIT_KEYS
    r = client.get("/search", params={"request_id": "nope"}, headers=auth)
    assert r.status_code == 404 and "nope" in r.json()["error"]


@pytest.mark.parametrize("body,status", [
    ({"text": "", "k": 3}, 422),
    ({"text": "   ", "k": 3}, 400),
    ({"text": "grade", "k": 0}, 422),
    ({"text": "grade", "k": MAX_K + 1}, 422),
    ({"text": "grade", "k": "many"}, 422),
    ({"k": 3}, 422),
    ("not json", 422),
])
def test_bad_search_input_gets_a_json_error(client, auth, body, status):
    if isinstance(body, str):
        r = client.post("/search", content=body, headers={**auth, "Content-Type": "application/json"})
    else:
        r = client.post("/search", json=body, headers=auth)
    assert r.status_code == status
    assert set(r.json()) == {"error"} and r.json()["error"]


@pytest.mark.parametrize("params", [{}, {"request_id": "s1", "k": 0}, {"request_id": "s1", "k": MAX_K + 1}])
def test_bad_request_id_query_gets_a_json_error(client, auth, params):
    r = client.get("/search", params=params, headers=auth)
    assert r.status_code == 422 and set(r.json()) == {"error"}


def test_account_row_group_and_evidence(client, auth):
    r = client.get("/accounts/sweep-1", headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert set(body["account"]) >= {"account_id", "n_requests", "score", "flagged", "group_id", "top_capability",
                                    "reasons"}
    assert body["account"]["flagged"] is True and body["group"]["group_id"] == "g1"
    assert body["group"]["members"] == ["sweep-1", "sweep-2", "sweep-3"]
    assert body["evidence"]["metrics"]["template_share"] == 0.9 and body["group_evidence"] == {"links": 3}
    solo = client.get("/accounts/user-1", headers=auth).json()
    assert solo["group"] is None and solo["account"]["group_id"] == ""
    r = client.get("/accounts/nobody", headers=auth)
    assert r.status_code == 404 and "nobody" in r.json()["error"]


def test_openapi_schema_behind_the_token(client, auth):
    r = client.get("/openapi.json", headers=auth)
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert {"/healthz", "/search", "/accounts/{account_id}"} <= set(paths)
    assert client.get("/docs").status_code == 404


def test_loopback_by_default():
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8765


def test_refuses_to_start_without_a_token(store_path, monkeypatch, capsys):
    monkeypatch.delenv("PROMPTCOV_TOKEN", raising=False)
    assert main(["serve", "--store", str(store_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PROMPTCOV_TOKEN" in err[0]
    with pytest.raises(ValueError, match="at least"):
        token_from_env({"PROMPTCOV_TOKEN": "short"})


def test_bearer_check():
    assert check_bearer(f"Bearer {TOKEN}", TOKEN) and check_bearer(f"bearer {TOKEN}", TOKEN)
    assert not check_bearer(None, TOKEN) and not check_bearer(f"Bearer {TOKEN}x", TOKEN)
    assert not check_bearer(TOKEN, TOKEN) and not check_bearer("Bearer ", TOKEN)
