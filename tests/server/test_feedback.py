"""POST /feedback and GET /feedback: ratings of chat answers, stored
durably (a restart keeps them), one per answer, exported as JSON or JSONL
behind the API key."""
import json

from conftest import assert_error


def test_feedback_round_trip(make_server, sample_db):
    s = make_server(env={"LODE_API_KEY": "wk"}, sub="fb", db=sample_db)
    key = {"Authorization": "Bearer wk"}
    chat = s.post("/chat", {"message": "how many vacation days?"}).json()
    assert chat["id"].startswith("chat-"), chat
    r = s.post("/feedback", {"answer_id": chat["id"], "rating": "up",
                             "query": "how many vacation days?",
                             "answer": chat["answer"],
                             "collection": "default"})
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["answer_id"] == chat["id"] and first["rating"] == "up"
    # rated again: the same row, the new rating, the fields kept
    r = s.post("/feedback", {"answer_id": chat["id"], "rating": "down",
                             "comment": "too short"})
    assert r.json()["id"] == first["id"]
    assert s.post("/feedback", {"id": "chat-other", "rating": -1}) \
        .status_code == 200

    # the export needs the key
    assert_error(s.get("/feedback"), 401)
    out = s.get("/feedback", headers=key).json()
    assert out["count"] == 2 and out["next_after"] == out["feedback"][-1]["id"]
    f = out["feedback"][0]
    assert f["answer_id"] == chat["id"] and f["rating"] == "down"
    assert f["comment"] == "too short" and f["answer"] == chat["answer"]
    assert f["query"] == "how many vacation days?"
    assert f["collection"] == "default" and f["updated"] >= f["created"] > 0
    assert out["feedback"][1]["rating"] == "down"
    page = s.get("/feedback?after=%d" % f["id"], headers=key).json()
    assert [x["answer_id"] for x in page["feedback"]] == ["chat-other"]
    assert s.get("/feedback?limit=1", headers=key).json()["count"] == 1
    lines = s.get("/feedback?format=jsonl", headers=key)
    assert lines.headers["Content-Type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in lines.text.splitlines()]
    assert rows == out["feedback"]

    # durable: a restart keeps it
    db = s.db
    assert s.stop() == 0
    s2 = make_server(env={"LODE_API_KEY": "wk"}, db=db, sub="fb2")
    again = s2.get("/feedback", headers=key).json()
    assert again["feedback"] == out["feedback"]


def test_feedback_validation(make_server):
    s = make_server()
    for body, code in [
            ({}, "invalid_answer_id"),
            ({"answer_id": "", "rating": "up"}, "invalid_answer_id"),
            ({"answer_id": "a b", "rating": "up"}, "invalid_answer_id"),
            ({"answer_id": "x" * 129, "rating": "up"}, "invalid_answer_id"),
            ({"answer_id": "c1"}, "invalid_rating"),
            ({"answer_id": "c1", "rating": "sideways"}, "invalid_rating"),
            ({"answer_id": "c1", "rating": 2}, "invalid_rating"),
            ({"answer_id": "c1", "rating": "up", "comment": 5},
             "invalid_feedback"),
            ({"answer_id": "c1", "rating": "up", "comment": "x" * 2001},
             "limit_exceeded"),
            ({"answer_id": "c1", "rating": "up", "query": "a\u0000b"},
             "invalid_feedback")]:
        assert_error(s.post("/feedback", body), 400, code)
    assert_error(s.post("/feedback", {"answer_id": "c1", "rating": "up",
                                      "collection": "bad name!"}), 400)
    assert_error(s.get("/feedback?limit=-1"), 400, "invalid_query")
    assert_error(s.get("/feedback?format=xml"), 400, "invalid_format")
    # nothing was stored by the refusals; loopback without a key exports
    assert s.get("/feedback").json()["feedback"] == []
    # a comment of exactly the limit in characters (not bytes) is fine
    assert s.post("/feedback", {"answer_id": "c1", "rating": True,
                                "comment": "é" * 2000}).status_code == 200


def test_feedback_with_read_key(make_server):
    s = make_server(env={"LODE_READ_KEY": "rk", "LODE_API_KEY": "wk"})
    body = {"answer_id": "c1", "rating": "up"}
    assert_error(s.post("/feedback", body), 401)
    assert s.post("/feedback", body, headers={"Authorization": "Bearer rk"}) \
        .status_code == 200
    # the read key does not export
    assert_error(s.get("/feedback", headers={"Authorization": "Bearer rk"}),
                 401)
    assert s.get("/feedback", headers={"Authorization": "Bearer wk"}) \
        .json()["count"] == 1
