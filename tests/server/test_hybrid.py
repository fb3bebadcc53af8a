"""Search modes over HTTP: vector, keyword and hybrid on POST /search and
in the chat's retrieval, with filters honoured in every mode, each result
saying which retriever found it, identifiers found by the keyword side,
and bad mode fields refused."""
import json
import subprocess

import pytest

from conftest import LODE, MODEL, ROOT, assert_error

VACATION = "how many vacation days do I get"
MODES = ["vector", "keyword", "hybrid"]


def search(s, body):
    r = s.post("/search", body)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("mode", MODES)
def test_modes_say_who_found_each_result(make_server, sample_db, mode):
    s = make_server(db=sample_db)
    out = search(s, {"query": VACATION, "k": 5, "mode": mode,
                     "fusion": "rrf"})
    assert out["mode"] == mode and out["count"] == 5
    assert (out.get("fusion") == "rrf") == (mode == "hybrid")
    assert out["results"][0]["source"].endswith("annual-leave.md")
    for x in out["results"]:
        by = x["retrievers"]
        assert set(by) <= {"vector", "keyword"} and by
        if mode != "hybrid":
            assert list(by) == [mode]
        for name, r in by.items():
            assert r["rank"] >= 1 and isinstance(r["score"], float)
        # the query was embedded (except in keyword mode): a similarity
        assert ("similarity" in x) == (mode != "keyword")
        if "vector" in by:
            assert by["vector"]["score"] == x["similarity"]
    if mode == "hybrid":
        rrf = [sum(1 / (60 + r["rank"]) for r in x["retrievers"].values())
               for x in out["results"]]
        assert [round(x["score"], 6) for x in out["results"]] == \
            [round(v, 6) for v in rrf]
    scores = [x["score"] for x in out["results"]]
    assert scores == sorted(scores, reverse=True)


def test_default_mode_and_convex(make_server, sample_db):
    s = make_server(db=sample_db)
    # the defaults chosen by bench/retrieval.sh (README, "Retrieval quality")
    out = search(s, {"query": VACATION})
    assert (out["mode"], out["fusion"], out["alpha"]) == ("hybrid", "convex", 0.5)
    out = search(s, {"query": VACATION, "mode": "hybrid", "fusion": "convex",
                     "alpha": 1})
    assert out["fusion"] == "convex" and out["alpha"] == 1
    vec = search(s, {"query": VACATION, "mode": "vector"})
    # alpha 1: the vector ranking
    assert [x["chunk_id"] for x in out["results"]] == \
        [x["chunk_id"] for x in vec["results"]]


@pytest.mark.parametrize("mode", MODES)
def test_filters_in_every_mode(make_server, sample_db, mode):
    s = make_server(db=sample_db)
    srcs = ["data/sample/sick-leave.md", "data/sample/expenses.md"]
    where = {"source": {"$in": srcs}}
    # exact k: there are more than 4 chunks in these two documents that
    # say "leave" or "days" (the vacation question's words)
    out = search(s, {"query": VACATION, "k": 4, "mode": mode,
                     "where": where})
    assert out["count"] == 4
    assert all(x["source"] in srcs for x in out["results"])
    # a filter that leaves one document
    one = search(s, {"query": VACATION, "k": 50, "mode": mode,
                     "where": {"source": srcs[0]}})
    assert one["count"] >= 1
    assert {x["source"] for x in one["results"]} == {srcs[0]}
    none = search(s, {"query": VACATION, "mode": mode,
                      "where": {"source": "nothing"}})
    assert none["count"] == 0 and none["results"] == []


def test_identifier_found_by_the_keyword_side(make_server):
    s = make_server()
    docs = [{"id": "reset%d" % i, "text":
             "To reset your password open the account page, choose reset "
             "password and follow the steps in the e-mail. Step %d." % i}
            for i in range(6)]
    docs.append({"id": "codes", "text":
                 "Error codes of the badge readers: ERR-4711 means the "
                 "badge has expired, ERR-4712 that it was revoked."})
    r = s.post("/collections/kb/documents", {"documents": docs})
    assert r.status_code == 200, r.text
    q = "my password reset says ERR-4711, what do I do?"
    kw = search(s, {"query": q, "collection": "kb", "mode": "keyword",
                    "k": 3})
    assert kw["results"][0]["id"] == "codes"
    hy = search(s, {"query": q, "collection": "kb", "k": 3})
    assert "codes" in [x["id"] for x in hy["results"]]
    found = [x for x in hy["results"] if x["id"] == "codes"][0]
    assert found["retrievers"]["keyword"]["rank"] == 1
    # a quoted phrase is matched as a phrase
    ph = search(s, {"query": '"badge has expired"', "collection": "kb",
                    "mode": "keyword"})
    assert [x["id"] for x in ph["results"]] == ["codes"]


def test_bad_mode_fields(make_server, sample_db):
    s = make_server(db=sample_db)
    for body, code in [({"mode": "semantic"}, "invalid_mode"),
                       ({"mode": 3}, "invalid_mode"),
                       ({"fusion": "max"}, "invalid_fusion"),
                       ({"alpha": 1.5}, "invalid_alpha"),
                       ({"alpha": "half"}, "invalid_alpha")]:
        r = s.post("/search", dict(body, query=VACATION))
        assert_error(r, 400)
        assert r.json()["error"]["code"] == code, r.text
        r = s.post("/chat", dict(body, message=VACATION))
        assert_error(r, 400)
        assert r.json()["error"]["code"] == code, r.text


@pytest.mark.parametrize("mode", MODES)
def test_chat_retrieval_mode(make_server, sample_db, mode):
    s = make_server(db=sample_db)
    r = s.post("/chat", {"message": VACATION, "mode": mode})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["retrieval"]["mode"] == mode
    assert a["covered"] is True
    assert a["sources"][0]["source"].endswith("annual-leave.md")
    for src in a["sources"]:
        assert src["retrievers"] and set(src["retrievers"]) <= \
            {"vector", "keyword"}
        if mode != "hybrid":
            assert list(src["retrievers"]) == [mode]
        # the source's score is its similarity to the question
        assert src["score"] == src["similarity"]


QUERIES = [
    {"query": VACATION, "relevant": ["data/sample/annual-leave.md"],
     "passage": "Every full-time employee gets 25 days of paid annual leave",
     "kind": "direct"},
    {"query": "Which law is Portuguese Law 93/2021 about?",
     "relevant": ["data/sample/whistleblowing.md"], "kind": "identifier"},
    {"query": "What is the capital of Australia?", "relevant": [],
     "kind": "uncovered"},
    {"query": "how do I claim travel expenses",
     "relevant": ["data/sample/expenses.md", "no/such/file.md"]},
]


def test_eval_every_mode(make_server, sample_db, tmp_path):
    s = make_server(db=sample_db)
    r = s.post("/eval", {"queries": QUERIES, "k": 3,
                         "alpha": [0.2, 0.8]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["queries"] == 3 and out["skipped"] == 1
    assert out["missing_relevant"] == 1 and out["k"] == 3
    configs = [x["config"] for x in out["results"]]
    assert configs == ["vector", "keyword", "hybrid rrf",
                       "hybrid convex a=0.20", "hybrid convex a=0.80"]
    for x in out["results"]:
        assert 0 <= x["recall@3"] <= 1 and 0 <= x["mrr"] <= 1
        assert 0 <= x["ndcg@10"] <= 1 and 0 <= x["passage@3"] <= 1
        # the expenses query can find only one of its two documents
        assert x["recall@3"] <= (1 + 1 + 0.5) / 3 + 1e-9
        assert set(x["by_kind"]) == {"direct", "identifier", "uncovered"}
        assert x["by_kind"]["uncovered"]["queries"] == 0
        assert x["by_kind"]["direct"]["mrr"] == 1.0
        assert x["search_ms"]["p99"] >= x["search_ms"]["p50"] >= 0
    # the same numbers as `lode eval` on the same database
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    cli = subprocess.run([LODE, "eval", "--db", str(s.db), "-m", MODEL, "-k",
                          "3", "--json", "--alpha", "0.2,0.8", str(path)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    got = json.loads(cli.stdout)
    for a, b in zip(got["results"], out["results"]):
        for key in ("recall@3", "mrr", "ndcg@10", "passage@3"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), (a["config"], key)


def test_eval_keyword_only_and_errors(make_server, sample_db):
    s = make_server(db=sample_db)
    r = s.post("/eval", {"queries": QUERIES[:2], "mode": "keyword"})
    assert r.status_code == 200, r.text
    assert [x["config"] for x in r.json()["results"]] == ["keyword"]
    for body, code in [({}, "invalid_queries"),
                       ({"queries": []}, "invalid_queries"),
                       ({"queries": [{"query": 7}]}, "invalid_queries"),
                       ({"queries": [{"query": "x", "relevant": [True]}]},
                        "invalid_queries"),
                       ({"queries": QUERIES, "mode": "best"}, "invalid_mode"),
                       ({"queries": QUERIES, "alpha": [2]}, "invalid_alpha"),
                       ({"queries": QUERIES, "k": 0}, "invalid_k"),
                       ({"queries": QUERIES, "where": {"a": 1}},
                        "invalid_where")]:
        r = s.post("/eval", body)
        assert_error(r, 400)
        assert r.json()["error"]["code"] == code, (body, r.text)
    many = [{"query": "q%d" % i, "relevant": ["x"]} for i in range(3)]
    s2 = make_server("--max-inputs", "2", db=sample_db)
    r = s2.post("/eval", {"queries": many})
    assert_error(r, 400)
    assert r.json()["error"]["code"] == "limit_exceeded"
    r = s.post("/eval", {"queries": QUERIES, "collection": "nothing"})
    assert_error(r, 404)
