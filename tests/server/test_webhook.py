"""POST /webhook/tally: signatures, idempotence on eventId, answers to
text, similar earlier submissions and catalog matches with a filter."""
import base64
import hashlib
import hmac
import json

import pytest
import requests

from conftest import TIMEOUT, assert_error

SECRET = "s3cret"


def payload(event_id, answers, form_id="wF1", event_type="FORM_RESPONSE"):
    """A Tally FORM_RESPONSE; answers is a list of field dicts."""
    return {
        "eventId": event_id,
        "eventType": event_type,
        "createdAt": "2025-01-21T10:00:00.000Z",
        "data": {
            "responseId": "r-" + event_id,
            "submissionId": "r-" + event_id,
            "respondentId": "p-" + event_id,
            "formId": form_id,
            "formName": "Support request",
            "createdAt": "2025-01-21T10:00:00.000Z",
            "fields": answers,
        },
    }


PLAN_OPTIONS = [{"id": "opt-free", "text": "Free"},
                {"id": "opt-pro", "text": "Pro"}]
TOPIC_OPTIONS = [{"id": "t1", "text": "Billing"}, {"id": "t2", "text": "Login"},
                 {"id": "t3", "text": "Export"}]


def answers(problem, plan="opt-pro", topics=("t1",), email="a@example.com"):
    return [
        {"key": "question_email", "label": "Email", "type": "INPUT_EMAIL",
         "value": email},
        {"key": "question_plan", "label": "Plan", "type": "MULTIPLE_CHOICE",
         "value": [plan], "options": PLAN_OPTIONS},
        {"key": "question_topics", "label": "Topics", "type": "CHECKBOXES",
         "value": list(topics), "options": TOPIC_OPTIONS},
        {"key": "question_problem", "label": "Problem", "type": "TEXTAREA",
         "value": problem},
        {"key": "question_seats", "label": "", "type": "INPUT_NUMBER",
         "value": 12},
        {"key": "question_skipped", "label": "Comment", "type": "TEXTAREA",
         "value": None},
    ]


def post_signed(s, body, secret=SECRET, signature=None, path="/webhook/tally"):
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if signature is None and secret is not None:
        signature = base64.b64encode(
            hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    if signature is not None:
        headers["Tally-Signature"] = signature
    return requests.post(s.url + path, data=raw, headers=headers,
                         timeout=TIMEOUT)


@pytest.fixture
def wh(make_server, tmp_path):
    """A server whose form wF1 is signed, embeds only Problem and Topics,
    and matches a catalog filtered on the plan."""
    cfg = {"tally": {
        "wF1": {"secret": SECRET, "embed_fields": ["Problem", "question_topics"],
                "filter_fields": {"Plan": "plan"}, "catalog": "kb", "k": 2},
        "open": {"k": 3},
    }}
    path = tmp_path / "webhooks.json"
    path.write_text(json.dumps(cfg))
    return make_server("--webhooks", str(path))


def test_signature(wh):
    body = payload("e1", answers("I cannot log in"))
    assert_error(post_signed(wh, body, secret=None), 401, "invalid_signature")
    assert_error(post_signed(wh, body, secret="wrong"), 401,
                 "invalid_signature")
    assert_error(post_signed(wh, body, signature="not base64!"), 401)
    # the signature covers the exact bytes: any change breaks it
    raw = json.dumps(body).encode()
    sig = base64.b64encode(hmac.new(SECRET.encode(), raw,
                                    hashlib.sha256).digest()).decode()
    r = requests.post(wh.url + "/webhook/tally", data=raw + b" ",
                      headers={"Content-Type": "application/json",
                               "Tally-Signature": sig}, timeout=TIMEOUT)
    assert_error(r, 401)
    r = post_signed(wh, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["ok"] is True and out["duplicate"] is False
    assert out["collection"] == "tally-wF1" and out["event_id"] == "e1"
    assert out["similar"] == []  # nothing earlier


def test_env_variable(make_server, tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"tally": {"f": {"secret": "x"}}}))
    s = make_server(env={"LODE_WEBHOOKS": str(path)})
    assert_error(post_signed(s, payload("e", answers("p"), form_id="f"),
                             secret="y"), 401)
    assert post_signed(s, payload("e", answers("p"), form_id="f"),
                       secret="x").status_code == 200


def test_redelivery_is_idempotent(wh):
    body = payload("evt-42", answers("Export to CSV fails"))
    first = post_signed(wh, body)
    assert first.status_code == 200, first.text
    assert first.json()["duplicate"] is False
    again = post_signed(wh, body)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["document_id"] == first.json()["document_id"]
    coll = [c for c in wh.get("/collections").json()["collections"]
            if c["name"] == "tally-wF1"]
    assert coll and coll[0]["documents"] == 1


def test_answers_to_text_and_metadata(wh):
    r = post_signed(wh, payload("e-text", answers(
        "Card was charged twice", topics=("t1", "t3"))))
    assert r.status_code == 200, r.text
    doc = wh.get("/collections/tally-wF1/documents/e-text").json()
    text = "".join(c["text"] for c in doc["chunks"])
    # only the embed_fields, option ids resolved, arrays joined
    assert "Topics: Billing, Export" in text
    assert "Problem: Card was charged twice" in text
    assert "Email" not in text and "Plan" not in text
    m = doc["metadata"]
    assert m["Plan"] == "Pro"            # one-element array unwrapped
    assert m["Topics"] == "Billing, Export"
    assert m["Email"] == "a@example.com"
    assert m["question_seats"] == 12     # no label: keyed by key, type kept
    assert "Comment" not in m            # unanswered
    assert m["tally_form_id"] == "wF1"
    assert doc["title"] == "Support request r-e-text"


def test_all_fields_embedded_by_default(make_server):
    s = make_server()  # no config: any form, behind the write rule
    r = s.post("/webhook/tally", payload("e", answers("Hello"), form_id="x"))
    assert r.status_code == 200, r.text
    doc = s.get("/collections/tally-x/documents/e").json()
    text = "".join(c["text"] for c in doc["chunks"])
    assert "Email: a@example.com" in text and "Plan: Pro" in text
    assert "question_seats: 12" in text and "Comment" not in text


def test_unsigned_form_needs_the_api_key(make_server):
    s = make_server(env={"LODE_API_KEY": "k"})
    body = payload("e", answers("Hello"), form_id="x")
    assert_error(s.post("/webhook/tally", body), 401)
    r = s.post("/webhook/tally", body, headers={"Authorization": "Bearer k"})
    assert r.status_code == 200, r.text


def test_similar_earlier_submissions(wh):
    subs = [("s1", "I forgot my password and cannot log in", ("t2",)),
            ("s2", "Exporting my data to CSV produces an empty file",
             ("t3",)),
            ("s3", "Login fails: the password reset email never arrives",
             ("t2",))]
    seen = []
    for eid, problem, topics in subs:
        r = post_signed(wh, payload(eid, answers(problem, topics=topics)))
        assert r.status_code == 200, r.text
        out = r.json()
        ids = [x["id"] for x in out["similar"]]
        assert eid not in ids                  # never itself
        assert set(ids) <= set(seen)           # only earlier ones
        assert len(ids) == min(2, len(seen))   # k = 2 from the config
        seen.append(eid)
    # s3 (login trouble) is closest to s1, not to the CSV export one
    assert ids[0] == "s1", out["similar"]
    top = out["similar"][0]
    assert top["metadata"]["Topics"] == "Login" and top["score"] > 0
    scores = [x["score"] for x in out["similar"]]
    assert scores == sorted(scores, reverse=True)


def test_catalog_matches_with_filter(wh):
    kb = [
        {"id": "pro-login", "text": "Pro plan: reset your password from the "
                                    "login page; SSO users ask their admin.",
         "metadata": {"plan": "Pro"}},
        {"id": "free-login", "text": "Free plan: reset your password from "
                                     "the login page.",
         "metadata": {"plan": "Free"}},
        {"id": "pro-export", "text": "Pro plan: exports to CSV run nightly.",
         "metadata": {"plan": "Pro"}},
    ]
    r = wh.post("/collections/kb/documents", {"documents": kb})
    assert r.status_code == 200, r.text
    r = post_signed(wh, payload("c1", answers("I cannot log in, password "
                                              "reset does not work",
                                              topics=("t2",))))
    assert r.status_code == 200, r.text
    cat = r.json()["catalog"]
    assert cat["collection"] == "kb" and cat["where"] == {"plan": "Pro"}
    ids = [x["id"] for x in cat["results"]]
    assert ids[0] == "pro-login" and "free-login" not in ids
    assert set(ids) <= {"pro-login", "pro-export"}
    assert cat["results"][0]["metadata"] == {"plan": "Pro"}
    r = post_signed(wh, payload("c2", answers("password reset broken",
                                              plan="opt-free")))
    cat = r.json()["catalog"]
    assert cat["where"] == {"plan": "Free"}
    assert [x["id"] for x in cat["results"]] == ["free-login"]


def test_missing_catalog_is_reported_not_retried(make_server, tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"tally": {"f": {"catalog": "nope"}}}))
    s = make_server("--webhooks", str(path))
    r = s.post("/webhook/tally", payload("e", answers("x"), form_id="f"))
    assert r.status_code == 200, r.text
    assert r.json()["catalog"]["results"] == []
    assert "nope" in r.json()["catalog"]["error"]


@pytest.mark.parametrize("body, what", [
    ({}, "no data"),
    ({"eventId": "e", "eventType": "FORM_RESPONSE", "data": []}, "data"),
    ({"eventId": "e", "eventType": "FORM_RESPONSE", "data": {}}, "formId"),
    ({"eventId": "e", "eventType": "FORM_RESPONSE",
      "data": {"formId": "bad id!", "fields": []}}, "formId"),
    ({"eventType": "FORM_RESPONSE", "data": {"formId": "x", "fields": []}},
     "eventId"),
    ({"eventId": 7, "eventType": "FORM_RESPONSE",
      "data": {"formId": "x", "fields": []}}, "eventId"),
    ({"eventId": "e", "data": {"formId": "x", "fields": []}}, "eventType"),
    ({"eventId": "e", "eventType": "FORM_RESPONSE",
      "data": {"formId": "x", "fields": {}}}, "fields"),
    ({"eventId": "e", "eventType": "FORM_RESPONSE",
      "data": {"formId": "x", "fields": [{"label": "no key"}]}}, "fields"),
    ({"eventId": "e", "eventType": "FORM_RESPONSE",
      "data": {"formId": "x", "fields": [
          {"key": "k", "label": "L", "value": None}]}}, "no answers"),
])
def test_malformed_payloads(server, body, what):
    assert_error(server.post("/webhook/tally", body), 400)


def test_not_json(server):
    r = requests.post(server.url + "/webhook/tally", data=b"{nope",
                      headers={"Content-Type": "application/json"},
                      timeout=TIMEOUT)
    assert_error(r, 400, "invalid_json")


def test_other_events_are_acknowledged(make_server):
    s = make_server()
    r = s.post("/webhook/tally", payload("e", answers("x"), form_id="x",
                                         event_type="FORM_DELETED"))
    assert r.status_code == 200 and r.json()["ignored"] is True
    assert s.get("/collections").json() == {"collections": [],
                                           "default": "default"}


def test_bad_config_refuses_to_start(tmp_path):
    import subprocess
    from conftest import LODE, ROOT
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"tally": {"f": {"k": 0}}}))
    r = subprocess.run([LODE, "serve", "--port", "0", "--webhooks",
                        str(path)], cwd=ROOT, capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 2 and "tally.f.k" in r.stderr
