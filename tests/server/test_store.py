"""Collections, documents and search over HTTP; the server and the CLI
share a database."""
import subprocess

from conftest import LODE, MODEL, ROOT, TIMEOUT, assert_error

DOCS = [
    {"id": "leave", "title": "Annual leave", "source": "hr/leave.md",
     "text": "# Annual leave\n\nEmployees get 25 days of paid annual leave "
             "per year.\n\n## Carry over\n\nUp to five days carry over.",
     "metadata": {"dept": "hr", "year": 2024}},
    {"id": "expenses", "title": "Expenses",
     "text": "Expense claims must be filed within 30 days with receipts.",
     "metadata": {"dept": "finance", "year": 2023}},
    {"id": "laptops", "text": "Every engineer gets a laptop, replaced every "
                              "three years.", "metadata": {"dept": "it"}},
]


def add(s, coll, docs, **kw):
    return s.post("/collections/%s/documents" % coll, {"documents": docs},
                  **kw)


def test_collections_crud(make_server):
    s = make_server()
    assert s.get("/collections").json() == {"collections": [],
                                           "default": "default"}
    r = s.post("/collections", {"name": "kb"})
    assert r.status_code == 201
    c = r.json()
    assert c["name"] == "kb" and c["dimension"] == 384
    assert c["model"] == "all-MiniLM-L6-v2-q8_0.gguf:q8_0"
    assert c["distance"] == "cosine" and c["documents"] == 0
    assert s.post("/collections", {"name": "kb"}).status_code == 200
    assert s.post("/collections", {"name": "dots", "distance": "dot"}) \
        .json()["distance"] == "dot"
    assert_error(s.post("/collections", {"name": "kb", "distance": "l2"}),
                 400)
    assert_error(s.post("/collections", {"name": "bad name!"}), 400)
    assert_error(s.post("/collections", {"name": ""}), 400)
    assert_error(s.post("/collections", {"name": "x" * 200}), 400)
    assert_error(s.post("/collections", {}), 400)
    assert_error(s.post("/collections", {"name": "x", "distance": "manhattan"}),
                 400)
    names = [c["name"] for c in s.get("/collections").json()["collections"]]
    assert names == ["dots", "kb"]
    assert s.delete("/collections/dots").json()["deleted"] is True
    assert_error(s.delete("/collections/dots"), 404)
    assert [c["name"] for c in s.get("/collections").json()["collections"]] \
        == ["kb"]


def test_documents_and_search(make_server):
    s = make_server()
    r = add(s, "kb", DOCS)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["collection"] == "kb"
    assert [d["id"] for d in out["documents"]] == ["leave", "expenses",
                                                  "laptops"]
    assert out["chunks"] >= 3 and out["usage"]["prompt_tokens"] > 0
    # search: best result first, with its fields
    r = s.post("/search", {"query": "how many vacation days do I get?",
                           "collection": "kb", "k": 2})
    assert r.status_code == 200
    res = r.json()["results"]
    assert len(res) == 2
    top = res[0]
    assert top["id"] == "leave" and top["title"] == "Annual leave"
    assert top["source"] == "hr/leave.md"
    assert top["heading"].startswith("Annual leave")
    assert 0 <= top["char_start"] < top["char_end"]
    assert res[0]["score"] >= res[1]["score"]
    assert isinstance(top["document_id"], int)
    # filters and min_score
    r = s.post("/search", {"query": "money", "collection": "kb",
                           "where": {"dept": "finance"}, "k": 10}).json()
    assert {x["id"] for x in r["results"]} == {"expenses"}
    r = s.post("/search", {"query": "money", "collection": "kb", "k": 10,
                           "where": {"year": {"$gte": 2024}}}).json()
    assert {x["id"] for x in r["results"]} == {"leave"}
    r = s.post("/search", {"query": "laptop", "collection": "kb", "k": 10,
                           "min_score": 0.99}).json()
    assert r["results"] == []
    # get one document, by external id and by numeric id
    d = s.get("/collections/kb/documents/leave").json()
    assert d["id"] == "leave" and d["metadata"] == {"dept": "hr",
                                                    "year": 2024}
    assert len(d["chunks"]) >= 1 and "25 days" in d["chunks"][0]["text"]
    again = s.get("/collections/kb/documents/%d" % d["document_id"]).json()
    assert again["id"] == "leave"
    assert_error(s.get("/collections/kb/documents/nope"), 404)
    assert_error(s.get("/collections/other/documents/leave"), 404)
    # upsert replaces
    r = add(s, "kb", [{"id": "leave", "text": "Leave is now 30 days.",
                       "metadata": {"dept": "hr"}}])
    assert r.json()["documents"][0]["document_id"] == d["document_id"]
    d2 = s.get("/collections/kb/documents/leave").json()
    assert d2["chunks"][0]["text"] == "Leave is now 30 days."
    # a single document as the body
    r = s.post("/collections/kb/documents", {"id": "one", "text": "Solo."})
    assert r.status_code == 200
    # delete
    assert s.delete("/collections/kb/documents/one").json()["deleted"]
    assert_error(s.delete("/collections/kb/documents/one"), 404)
    cols = s.get("/collections").json()["collections"]
    assert cols[0]["documents"] == 3
    # searching a missing collection, or the default one
    assert_error(s.post("/search", {"query": "x", "collection": "none"}), 404)


def test_document_errors(make_server):
    s = make_server()
    for body in ({"documents": []}, {"documents": "x"},
                 {"documents": [{"text": ""}]}, {"documents": [{"id": "x"}]},
                 {"documents": [{"text": 5}]}, {"documents": [5]},
                 {"documents": [{"text": "ok", "metadata": [1]}]},
                 {"documents": [{"text": "ok", "title": 7}]},
                 {"documents": [{"text": "   \n  "}]}):
        assert_error(s.post("/collections/kb/documents", body), 400)
    assert_error(s.post("/collections/bad%20name/documents",
                        {"text": "x"}), 400)
    # nothing was written by the failures
    assert s.get("/collections").json() == {"collections": [],
                                           "default": "default"}
    # invalid UTF-8 in JSON is refused by the parser
    import requests
    r = requests.post(s.url + "/collections/kb/documents",
                      data=b'{"text": "\xff"}',
                      headers={"Content-Type": "application/json"},
                      timeout=TIMEOUT)
    assert_error(r, 400)


def test_default_collection_and_cli_interop(make_server, tmp_path):
    """Documents added over HTTP are found by `lode search`, and the server
    searches the "default" collection when none is named."""
    s = make_server()
    assert add(s, "default", DOCS).status_code == 200
    r = s.post("/search", {"query": "receipts for expenses"}).json()
    assert r["collection"] == "default"
    assert r["results"][0]["id"] == "expenses"
    out = subprocess.run([LODE, "search", "--db", s.db, "-m", MODEL,
                          "receipts for expenses"], cwd=ROOT,
                         capture_output=True, text=True, timeout=TIMEOUT)
    if out.returncode == 0:   # the CLI command exists
        assert "expenses" in out.stdout.lower() or "receipts" in out.stdout
