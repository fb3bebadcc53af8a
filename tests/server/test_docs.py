"""PDF, DOCX and ODT in the server: `lode serve --watch DIR` picks up files
added, changed and removed while it runs, and page numbers of PDF chunks
reach /search results, document chunk listings and /chat sources.

Fixtures come from tests/make_fixtures.py (written here, at test time).
Every wait polls for the condition it then asserts, with a deadline."""
import os
import shutil
import subprocess
import sys

from conftest import ROOT, TIMEOUT, wait_for

sys.path.insert(0, os.path.join(ROOT, "tests"))
import make_fixtures  # noqa: E402


def search(s, query, k=5):
    r = s.post("/search", {"query": query, "k": k})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def sources(s):
    r = s.post("/search", {"query": "gateway", "k": 100})
    return {x["source"] for x in r.json()["results"]} if r.status_code == 200 \
        else set()


def test_watch_and_pages(make_server, tmp_path):
    fx = tmp_path / "fx"
    subprocess.run([sys.executable, os.path.join(ROOT, "tests",
                                                 "make_fixtures.py"), str(fx)],
                   check=True)
    watched = tmp_path / "watched"
    watched.mkdir()
    shutil.copy(fx / "paged.pdf", watched / "paged.pdf")
    s = make_server("--watch", str(watched), "--watch-rescan", "3600")
    pdf = str(watched / "paged.pdf")
    wait_for(lambda: pdf in sources(s), what="the PDF indexed")

    # Page numbers in search results ...
    top = search(s, "zebra firmware package before the first start")[0]
    assert top["source"] == pdf
    assert (top["page_start"], top["page_end"]) == (2, 2), top
    assert top["heading"] == "Install > Linux"
    # ... in the document's chunk listing ...
    doc = s.get("/collections/default/documents/%d" %
                top["document_id"]).json()
    pages = [(c["page_start"], c["page_end"]) for c in doc["chunks"]]
    assert pages[0] == (1, 1) and pages[-1] == (3, 3), pages
    # ... and in chat sources (no LLM: the answer from the documents).
    chat = s.post("/chat", {"message": "What does the gateway need on "
                                       "Linux before the first start?"})
    assert chat.status_code == 200, chat.text
    src = chat.json()["sources"]
    assert src and src[0]["source"] == pdf, src
    assert (src[0]["page_start"], src[0]["page_end"]) == (2, 2), src[0]

    # A file added while it runs: a Word file, without pages.
    docx = str(watched / "handbook.docx")
    shutil.copy(fx / "handbook.docx", docx)
    wait_for(lambda: docx in sources(s), what="the DOCX indexed")
    hit = [x for x in search(s, "zebra firmware package", 10)
           if x["source"] == docx][0]
    assert "page_start" not in hit and hit["heading"] == "Install > Linux"

    # Changed: new content under the same name (written to a temporary
    # name and renamed, as editors save).
    files = [(n, d.replace("zebra firmware", "quokka driver"))
             for n, d in make_fixtures.docx_files()]
    make_fixtures.write_zip(str(tmp_path / "new.docx"), files)
    os.replace(tmp_path / "new.docx", docx)

    def changed():
        res = search(s, "quokka driver", 3)
        return res and res[0]["source"] == docx and \
            "quokka driver" in res[0]["text"]
    wait_for(changed, what="the changed DOCX re-indexed")
    assert not any("zebra" in x["text"] for x in search(s, "zebra", 20)
                   if x["source"] == docx)

    # Removed.
    os.remove(docx)
    wait_for(lambda: docx not in sources(s), what="the DOCX removed")
    assert pdf in sources(s)
    wait_for(lambda: "watch:" in s.stderr, what="the watcher's log line")


def test_upload_pdf_and_docx(make_server, tmp_path):
    """Uploads take the same formats as ingest: a PDF keeps its pages, a
    DOCX its headings, and a scan is refused by name with the reason while
    the other files of the request are stored."""
    import requests
    from conftest import TIMEOUT
    fx = tmp_path / "fx"
    subprocess.run([sys.executable, os.path.join(ROOT, "tests",
                                                 "make_fixtures.py"), str(fx)],
                   check=True)
    s = make_server()
    files = [("file", (n, open(fx / n, "rb").read(), "application/octet-stream"))
             for n in ("paged.pdf", "handbook.docx")]
    r = requests.post(s.url + "/collections/docs/files", files=files,
                      timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert [f["format"] for f in r.json()["files"]] == ["pdf", "docx"]
    res = s.post("/search", {"query": "zebra firmware package before the "
                                      "first start", "collection": "docs",
                             "k": 10}).json()["results"]
    pdf = [x for x in res if x["source"] == "paged.pdf"][0]
    assert (pdf["page_start"], pdf["page_end"]) == (2, 2), pdf
    docx = [x for x in res if x["source"] == "handbook.docx"][0]
    assert "page_start" not in docx and docx["heading"] == "Install > Linux"

    # typed by its content type alone, a scan: refused with the reason
    r = requests.post(s.url + "/collections/docs/files?filename=scan.pdf",
                      data=open(fx / "scan.pdf", "rb").read(),
                      headers={"Content-Type": "application/pdf"},
                      timeout=TIMEOUT)
    assert r.status_code in (400, 422), r.text
    assert "text layer" in r.json()["error"]["message"], r.text
    assert s.post("/search", {"query": "zebra", "collection": "docs",
                              "k": 10}).status_code == 200
