"""POST /webhook/{name}: any JSON object, its text and metadata picked by
JSON pointers (RFC 6901) from the "generic" section of --webhooks;
signatures (hex or base64 HMAC-SHA256), idempotence on an id pointer or
the body's SHA-256, similar earlier deliveries, catalog matches, and the
400s that name the pointer."""
import base64
import hashlib
import hmac
import json
import subprocess

import pytest
import requests

from conftest import LODE, ROOT, TIMEOUT, assert_error

SECRET = "gh-s3cret"
HEADER = "X-Hub-Signature-256"

CONFIG = {"generic": {
    "issues": {
        "secret": SECRET, "signature_header": HEADER,
        "text": ["/issue/title", "/issue/body", "/issue/labels"],
        "metadata": {"number": "/issue/number", "state": "/issue/state",
                     "author": "/issue/user/login",
                     "labels": "/issue/labels", "draft": "/issue/draft"},
        "id": "/delivery", "title": "/issue/title",
        "filter_fields": {"state": "status"}, "catalog": "kb", "k": 2,
    },
    "open": {"text": ["/message"]},
    "custom": {"text": ["/a~1b/0", "/m~0n"], "collection": "custom-coll"},
}}


def issue(delivery, title, body, labels=("bug",), state="open", number=1):
    return {"delivery": delivery, "action": "opened",
            "issue": {"number": number, "title": title, "body": body,
                      "labels": list(labels), "state": state,
                      "draft": False, "user": {"login": "ann"}}}


def sign_hex(raw, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), raw,
                                hashlib.sha256).hexdigest()


def post(s, name, body, signature=None, raw=None, headers=None):
    raw = raw if raw is not None else json.dumps(body).encode()
    h = {"Content-Type": "application/json"}
    if signature is not None:
        h[HEADER] = signature
    h.update(headers or {})
    return requests.post(s.url + "/webhook/" + name, data=raw, headers=h,
                         timeout=TIMEOUT)


def post_signed(s, body):
    raw = json.dumps(body).encode()
    return post(s, "issues", body, signature=sign_hex(raw), raw=raw)


def documents(s, collection):
    for c in s.get("/collections").json()["collections"]:
        if c["name"] == collection:
            return c["documents"]
    return 0


@pytest.fixture
def gen(make_server, tmp_path):
    path = tmp_path / "webhooks.json"
    path.write_text(json.dumps(CONFIG))
    return make_server("--webhooks", str(path))


def test_unknown_name_is_404(gen, make_server):
    e = assert_error(gen.post("/webhook/nope", {"a": 1}), 404,
                     "unknown_webhook")
    assert "nope" in e["message"]
    # no configuration at all: every name is unknown
    assert_error(make_server().post("/webhook/x", {"a": 1}), 404)
    r = requests.get(gen.url + "/webhook/issues", timeout=TIMEOUT)
    assert_error(r, 405)


def test_signature(gen):
    body = issue("d-sig", "Export fails", "The CSV is empty")
    raw = json.dumps(body).encode()
    assert_error(post(gen, "issues", body), 401, "invalid_signature")
    assert_error(post(gen, "issues", body, signature=sign_hex(raw, "wrong")),
                 401, "invalid_signature")
    assert_error(post(gen, "issues", body, signature="sha256=zz"), 401)
    # the signature covers the exact bytes
    assert_error(post(gen, "issues", body, signature=sign_hex(raw),
                      raw=raw + b" "), 401)
    # hex (either case, with or without "sha256=") and base64 all work
    mac = hmac.new(SECRET.encode(), raw, hashlib.sha256)
    for sig in (mac.hexdigest().upper(), base64.b64encode(mac.digest())
                .decode(), sign_hex(raw)):
        r = post(gen, "issues", body, signature=sig, raw=raw)
        assert r.status_code == 200, (sig, r.text)
    assert documents(gen, "webhook-issues") == 1


def test_stores_and_answers(gen):
    r = post_signed(gen, issue("d-1", "Export to CSV fails",
                               "The exported file is empty",
                               labels=("bug", "export"), number=7))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["ok"] is True and out["duplicate"] is False
    assert out["webhook"] == "issues" and "form_id" not in out
    assert out["collection"] == "webhook-issues"
    assert out["event_id"] == "d-1" and out["similar"] == []
    assert out["catalog"]["collection"] == "kb"
    doc = gen.get("/collections/webhook-issues/documents/d-1").json()
    text = "".join(c["text"] for c in doc["chunks"])
    assert text == ("Export to CSV fails\nThe exported file is empty\n"
                    "bug, export")
    assert doc["title"] == "Export to CSV fails"
    assert doc["metadata"] == {"number": 7, "state": "open",
                               "author": "ann", "labels": "bug, export",
                               "draft": False, "webhook": "issues"}


def test_long_title_cut_at_a_character(gen):
    # 3-byte characters: 511 bytes would end inside the 171st
    title = "\u20ac" * 300
    r = post_signed(gen, issue("d-long", title, "body text"))
    assert r.status_code == 200, r.text
    doc = gen.get("/collections/webhook-issues/documents/d-long").json()
    assert doc["title"] == "\u20ac" * 170
    r = gen.post("/search", json={"query": "body text",
                                  "collection": "webhook-issues"})
    assert r.status_code == 200, r.text
    assert any(x["title"] == "\u20ac" * 170 for x in r.json()["results"])


def test_idempotent_on_the_id_pointer(gen):
    body = issue("d-dup", "Login broken", "Cannot sign in")
    first = post_signed(gen, body)
    assert first.status_code == 200, first.text
    body["issue"]["body"] = "edited, same delivery id"
    again = post_signed(gen, body)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["document_id"] == first.json()["document_id"]
    assert again.json()["event_id"] == "d-dup"
    assert documents(gen, "webhook-issues") == 1


def test_default_id_is_the_body_hash(gen):
    raw = json.dumps({"message": "The app crashes on start"}).encode()
    r = post(gen, "open", None, raw=raw)
    assert r.status_code == 200, r.text
    assert r.json()["event_id"] == hashlib.sha256(raw).hexdigest()
    assert r.json()["collection"] == "webhook-open"
    again = post(gen, "open", None, raw=raw)
    assert again.json()["duplicate"] is True
    other = post(gen, "open", {"message": "The app crashes on exit"})
    assert other.status_code == 200 and other.json()["duplicate"] is False
    assert documents(gen, "webhook-open") == 2
    doc = gen.get("/collections/webhook-open/documents/" +
                  r.json()["event_id"]).json()
    assert doc["title"] == "open " + r.json()["event_id"]
    assert doc["metadata"] == {"webhook": "open"}


def test_similar_earlier_deliveries(gen):
    subs = [("s1", "Password reset email never arrives",
             "I cannot log in since the reset mail is missing"),
            ("s2", "CSV export is empty", "Exporting data gives no rows"),
            ("s3", "Cannot log in", "Login fails and the password reset "
                                    "mail does not come")]
    seen = []
    for d, title, text in subs:
        r = post_signed(gen, issue(d, title, text))
        assert r.status_code == 200, r.text
        ids = [x["id"] for x in r.json()["similar"]]
        assert d not in ids and set(ids) <= set(seen)
        assert len(ids) == min(2, len(seen))   # k = 2
        seen.append(d)
    assert ids[0] == "s1", r.json()["similar"]
    assert r.json()["similar"][0]["metadata"]["author"] == "ann"


def test_catalog_filter_from_metadata(gen):
    kb = [{"id": "open-login", "text": "Open tickets: reset your password "
                                       "from the login page.",
           "metadata": {"status": "open"}},
          {"id": "closed-login", "text": "Closed tickets: reset your "
                                         "password from the login page.",
           "metadata": {"status": "closed"}}]
    assert gen.post("/collections/kb/documents",
                    {"documents": kb}).status_code == 200
    r = post_signed(gen, issue("c1", "Cannot log in", "password reset "
                                                      "broken"))
    assert r.status_code == 200, r.text
    cat = r.json()["catalog"]
    assert cat["where"] == {"status": "open"}
    assert [x["id"] for x in cat["results"]] == ["open-login"]
    r = post_signed(gen, issue("c2", "Cannot log in", "password reset",
                               state="closed"))
    assert [x["id"] for x in r.json()["catalog"]["results"]] == \
        ["closed-login"]


@pytest.mark.parametrize("change, pointer", [
    (lambda b: b["issue"].pop("title"), "/issue/title"),
    (lambda b: b["issue"].update(body={"not": "text"}), "/issue/body"),
    (lambda b: b["issue"].update(body=None), "/issue/body"),
    (lambda b: b["issue"].update(labels=["a", {"b": 1}]), "/issue/labels"),
    (lambda b: b["issue"].update(user={}), "/issue/user/login"),
    (lambda b: b["issue"].update(number=[{}]), "/issue/number"),
    (lambda b: b.pop("delivery"), "/delivery"),
    (lambda b: b.update(delivery=""), "/delivery"),
    (lambda b: b.update(delivery=1.5), "/delivery"),
])
def test_unresolved_pointers_are_400(gen, change, pointer):
    body = issue("bad", "Title", "Body")
    change(body)
    e = assert_error(post_signed(gen, body), 400)
    assert '"%s"' % pointer in e["message"], e
    assert documents(gen, "webhook-issues") == 0


def test_body_must_be_an_object(gen):
    assert_error(post(gen, "open", ["message"]), 400, "invalid_json")
    assert_error(post(gen, "open", None, raw=b"{nope"), 400, "invalid_json")
    e = assert_error(post(gen, "open", {"message": ""}), 400)
    assert "no text" in e["message"]


def test_escaped_pointers_and_collection(gen):
    r = post(gen, "custom", {"a/b": ["first"], "m~n": 42})
    assert r.status_code == 200, r.text
    assert r.json()["collection"] == "custom-coll"
    doc = gen.get("/collections/custom-coll/documents/" +
                  r.json()["event_id"]).json()
    assert "".join(c["text"] for c in doc["chunks"]) == "first\n42"


def test_no_secret_needs_the_api_key(make_server, tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(CONFIG))
    s = make_server("--webhooks", str(path), env={"LODE_API_KEY": "k"})
    body = {"message": "hello"}
    assert_error(s.post("/webhook/open", body), 401, "invalid_api_key")
    r = s.post("/webhook/open", body, headers={"Authorization": "Bearer k"})
    assert r.status_code == 200, r.text
    # a signed webhook does not need the key
    raw = json.dumps(issue("k1", "t", "b")).encode()
    r = post(s, "issues", None, signature=sign_hex(raw), raw=raw)
    assert r.status_code == 200, r.text


def test_tally_keeps_its_route(gen):
    r = gen.post("/webhook/tally", {
        "eventId": "t1", "eventType": "FORM_RESPONSE",
        "data": {"formId": "f", "fields": [
            {"key": "q", "label": "Q", "value": "hello"}]}})
    assert r.status_code == 200, r.text
    assert r.json()["webhook"] == "tally" and r.json()["form_id"] == "f"


@pytest.mark.parametrize("cfg, needle", [
    ({"generic": {"x": {"text": ["nope"]}}}, "generic.x.text"),
    ({"generic": {"x": {"text": ["/a"], "metadat": {}}}}, "unknown setting"),
    ({"generic": {"tally": {"text": ["/a"]}}}, "generic.tally"),
    ({"generic": {"x": {"text": ["/a"], "forward_url": "file:///x"}}},
     "forward_url"),
])
def test_bad_config_refuses_to_start(tmp_path, cfg, needle):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([LODE, "serve", "--port", "0", "--webhooks",
                        str(path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
