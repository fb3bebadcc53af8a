"""POST /collections/{name}/files: uploads in every format `lode ingest`
reads, as multipart/form-data or a raw body, stored as the CLI stores
them; GET /collections/{name}/documents lists them; /health counts them."""
import json
import subprocess

import requests

from conftest import LODE, MODEL, ROOT, TIMEOUT, assert_error

MD = b"# Lunar greenhouse\n\nThe lunar greenhouse is watered by the night " \
     b"shift every Tuesday.\n\n## Tomatoes\n\nTomatoes grow under red light."
HTML = b"<html><head><title>Rover</title></head><body><h1>Rover</h1>" \
       b"<p>The rover charges at the north dock.</p><script>x()</script>" \
       b"</body></html>"
JSONL = b'{"id": "r1", "text": "Oxygen tanks are checked daily.", ' \
        b'"team": "life"}\n{"id": "r2", "text": "Solar panels are cleaned ' \
        b'weekly.", "team": "power"}\n'


def upload(s, coll, files, **kw):
    kw.setdefault("timeout", TIMEOUT)
    return requests.post(s.url + "/collections/%s/files" % coll, files=files,
                         **kw)


def search(s, query, coll="kb", k=3):
    r = s.post("/search", {"query": query, "collection": coll, "k": k})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_multipart_upload_of_every_format(make_server):
    s = make_server()
    r = upload(s, "kb", [
        ("file", ("moon.md", MD, "text/markdown")),
        ("file", ("rover.html", HTML, "text/html")),
        ("file", ("log.jsonl", JSONL, "application/octet-stream")),
        ("file", ("notes.txt", b"Plain words about the airlock seal.",
                  "text/plain")),
        ("comment", (None, b"a plain field is not a file")),
    ])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["collection"] == "kb" and out["stored"] == 4
    files = {f["name"]: f for f in out["files"]}
    assert [f["name"] for f in out["files"]] == ["moon.md", "rover.html",
                                                "log.jsonl", "notes.txt"]
    assert files["moon.md"]["format"] == "markdown"
    assert files["rover.html"]["format"] == "html"
    assert files["log.jsonl"]["format"] == "jsonl"
    assert [d["source"] for d in files["log.jsonl"]["documents"]] == \
        ["log.jsonl#r1", "log.jsonl#r2"]
    assert all(d["status"] == "added" and d["chunks"] >= 1
               for f in out["files"] for d in f["documents"])
    assert out["chunks"] == sum(f["chunks"] for f in out["files"])

    # stored as ingest stores them: headings, format metadata, record ids
    best = search(s, "when is the greenhouse watered")[0]
    assert best["source"] == "moon.md" and best["title"] == "Lunar greenhouse"
    assert best["heading"] == "Lunar greenhouse"
    tomato = search(s, "what light do tomatoes need")[0]
    assert tomato["heading"] == "Lunar greenhouse > Tomatoes"
    rover = search(s, "where does the rover charge")[0]
    assert rover["source"] == "rover.html" and "x()" not in rover["text"]
    assert rover["title"] == "Rover"
    oxygen = search(s, "how often are oxygen tanks checked")[0]
    assert oxygen["id"] == "r1" and oxygen["source"] == "log.jsonl#r1"
    doc = s.get("/collections/kb/documents/r2").json()
    assert doc["metadata"] == {"team": "power"}
    md = s.get("/collections/kb/documents/%d" %
               files["moon.md"]["documents"][0]["document_id"]).json()
    assert md["metadata"] == {"format": "markdown"}

    # the listing and the counts of /health
    lst = s.get("/collections/kb/documents").json()
    assert lst["total"] == 5 and len(lst["documents"]) == 5
    assert [d["source"] for d in lst["documents"]][:2] == ["moon.md",
                                                          "rover.html"]
    assert lst["documents"][0]["chunks"] >= 2
    page = s.get("/collections/kb/documents?offset=1&limit=2").json()
    assert [d["source"] for d in page["documents"]] == ["rover.html",
                                                       "log.jsonl#r1"]
    h = s.get("/health").json()
    assert h["store"]["documents"] == 5
    assert h["store"]["chunks"] == sum(d["chunks"] for d in lst["documents"])


def test_reupload_unchanged_and_changed(make_server):
    s = make_server()
    assert upload(s, "kb", [("f", ("moon.md", MD))]).status_code == 200
    r = upload(s, "kb", [("f", ("moon.md", MD))]).json()
    assert r["files"][0]["documents"][0]["status"] == "unchanged"
    assert r["chunks"] == 0
    changed = MD.replace(b"Tuesday", b"Friday")
    r = upload(s, "kb", [("f", ("moon.md", changed))]).json()
    d = r["files"][0]["documents"][0]
    assert d["status"] == "updated" and d["chunks"] >= 1
    assert s.get("/collections/kb/documents").json()["total"] == 1
    assert "Friday" in search(s, "when is the greenhouse watered")[0]["text"]


def test_raw_body_upload(make_server):
    s = make_server()
    # named by ?filename=
    r = requests.post(s.url + "/collections/kb/files?filename=moon.md",
                      data=MD, headers={"Content-Type":
                                        "application/octet-stream"},
                      timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["files"][0]["format"] == "markdown"
    # named by Content-Disposition, any directories dropped
    r = requests.post(s.url + "/collections/kb/files", data=HTML,
                      headers={"Content-Type": "text/html",
                               "Content-Disposition":
                               'attachment; filename="a/b/rover.html"'},
                      timeout=TIMEOUT)
    assert r.json()["files"][0]["source"] == "rover.html"
    # typed only: a name from the content
    r = requests.post(s.url + "/collections/kb/files",
                      data=b"Spare suits hang in locker nine.",
                      headers={"Content-Type": "text/plain; charset=utf-8"},
                      timeout=TIMEOUT)
    src = r.json()["files"][0]["source"]
    assert src.startswith("upload-") and src.endswith(".txt")
    assert search(s, "where are the spare suits")[0]["source"] == src


def test_bad_uploads(make_server):
    s = make_server()
    # every file bad: the first file's error
    e = assert_error(upload(s, "kb", [("f", ("photo.png", b"\x89PNG\r\n",
                                             "image/png"))]), 415,
                     "unsupported_format")
    assert "photo.png" in e["message"] and ".pdf" in e["message"]
    e = assert_error(upload(s, "kb", [("f", ("broken.pdf", b"%PDF-1.4",
                                             "application/pdf"))]), 400,
                     "invalid_file")
    assert "broken.pdf" in e["message"]
    e = assert_error(upload(s, "kb", [("f", ("bad.md", b"ok \xff\xfe"))]),
                     400, "invalid_file")
    assert "UTF-8" in e["message"] and "bad.md" in e["message"]
    assert_error(upload(s, "kb", [("f", ("bad.json", b"{nope"))]), 400,
                 "invalid_file")
    assert_error(upload(s, "kb", [("f", ("empty.md", b"  \n\n "))]), 400,
                 "invalid_file")
    # a bad file beside a good one: stored, and reported
    r = upload(s, "kb", [("f", ("photo.png", b"\x89PNG")),
                         ("f", ("moon.md", MD))])
    assert r.status_code == 200
    out = r.json()
    assert out["stored"] == 1
    assert out["files"][0]["error"]["code"] == "unsupported_format"
    assert out["files"][1]["documents"][0]["status"] == "added"
    # malformed requests
    assert_error(requests.post(s.url + "/collections/kb/files", data=b"",
                               headers={"Content-Type": "text/plain"},
                               timeout=TIMEOUT), 400, "no_file")
    assert_error(requests.post(
        s.url + "/collections/kb/files", data=b"--x\r\nContent-Disposition: "
        b"form-data; name=\"a\"\r\n\r\nhello", headers={
            "Content-Type": "multipart/form-data; boundary=x"},
        timeout=TIMEOUT), 400, "invalid_multipart")
    assert_error(requests.post(
        s.url + "/collections/kb/files", data=b"--x\r\nContent-Disposition: "
        b"form-data; name=\"a\"\r\n\r\nhello\r\n--x--\r\n", headers={
            "Content-Type": "multipart/form-data; boundary=x"},
        timeout=TIMEOUT), 400, "no_file")
    assert_error(requests.post(s.url + "/collections/kb/files", data=b"x",
                               headers={"Content-Type":
                                        "multipart/form-data"},
                               timeout=TIMEOUT), 400, "invalid_multipart")
    assert_error(upload(s, "bad name!", [("f", ("moon.md", MD))]), 400)


def test_upload_limits_and_auth(make_server):
    s = make_server("--max-body", "4096", "--max-documents", "2",
                    env={"LODE_API_KEY": "wk"})
    key = {"Authorization": "Bearer wk"}
    assert_error(upload(s, "kb", [("f", ("moon.md", MD))]), 401)
    assert_error(upload(s, "kb", [("f", ("moon.md", MD))],
                        headers={"Authorization": "Bearer nope"}), 401)
    assert_error(upload(s, "kb", [("f", ("big.md", b"word " * 2000))],
                        headers=key), 413)
    assert_error(upload(s, "kb", [("f", ("log.jsonl", JSONL * 2))],
                        headers=key), 400, "limit_exceeded")
    assert_error(upload(s, "kb", [("f", ("%d.md" % i, MD)) for i in range(3)],
                        headers=key), 400, "limit_exceeded")
    r = upload(s, "kb", [("f", ("moon.md", MD))], headers=key)
    assert r.status_code == 200, r.text


def test_same_documents_as_the_cli(make_server, tmp_path):
    """A file uploaded and the same file ingested by `lode ingest` give the
    same chunks (text, offsets, headings)."""
    path = tmp_path / "rover.html"
    path.write_bytes(HTML + MD.replace(b"#", b""))
    db = str(tmp_path / "cli.db")
    subprocess.run([LODE, "ingest", "--db", db, "-m", MODEL, "--collection", "cli",
                    str(path)], cwd=ROOT, check=True, capture_output=True,
                   timeout=TIMEOUT * 3)
    s = make_server(db=db)
    r = upload(s, "web", [("f", ("rover.html", path.read_bytes()))])
    assert r.status_code == 200, r.text

    def chunks(coll, doc_id):
        d = s.get("/collections/%s/documents/%s" % (coll, doc_id)).json()
        return d["title"], d["metadata"], [
            (c["text"], c["char_start"], c["char_end"], c["heading"])
            for c in d["chunks"]]
    cli = s.get("/collections/cli/documents").json()["documents"][0]
    web = s.get("/collections/web/documents").json()["documents"][0]
    assert chunks("cli", cli["document_id"]) == chunks("web",
                                                       web["document_id"])
