"""100 concurrent clients mixing embeddings, searches and writes: no
errors, and every answer equal to the one the same request got alone.
Searches are vector searches: keyword scores (BM25) rightly move as the
other clients' writes change the corpus statistics."""
import concurrent.futures as cf
import threading

import requests

from conftest import SLOW, TIMEOUT

CORPUS = [{"id": "d%d" % i,
           "text": "Policy %d. %s" % (i, " ".join(
               ["topic%d" % (i % 7), "rule", "employees", "section"] * (i % 5
                                                                       + 1))),
           "metadata": {"group": i % 3}} for i in range(20)]
QUERIES = ["employees rule", "topic3 section", "policy 7", "what is topic5",
           "rules for employees in section 2"]
TEXTS = ["text number %d about %s" % (i, ["cats", "tax", "leave"][i % 3])
         for i in range(30)]


def test_hundred_clients(make_server):
    s = make_server()
    assert s.post("/collections/kb/documents",
                  {"documents": CORPUS}).status_code == 200
    # serial baselines
    emb_alone = {t: s.post("/v1/embeddings", {"input": t}).json()["data"][0]
                 ["embedding"] for t in TEXTS}
    search_alone = {q: s.post("/search", {"query": q, "collection": "kb",
                                          "k": 5, "mode": "vector"}
                              ).json()["results"]
                    for q in QUERIES}
    n_clients = 100
    rounds = 2 if SLOW else 4
    barrier = threading.Barrier(n_clients)
    written = []
    lock = threading.Lock()

    def client(c):
        session = requests.Session()
        barrier.wait()
        for r in range(rounds):
            kind = (c + r) % 3
            if kind == 0:
                batch = [TEXTS[(c + j) % len(TEXTS)] for j in range(1 + c % 4)]
                resp = session.post(s.url + "/v1/embeddings",
                                    json={"input": batch}, timeout=TIMEOUT * 3)
                assert resp.status_code == 200, resp.text
                for t, d in zip(batch, resp.json()["data"]):
                    assert d["embedding"] == emb_alone[t], t
            elif kind == 1:
                q = QUERIES[(c + r) % len(QUERIES)]
                resp = session.post(s.url + "/search",
                                    json={"query": q, "collection": "kb",
                                          "k": 5, "mode": "vector"},
                                    timeout=TIMEOUT * 3)
                assert resp.status_code == 200, resp.text
                got = resp.json()["results"]
                assert [(x["chunk_id"], x["score"]) for x in got] == \
                    [(x["chunk_id"], x["score"]) for x in search_alone[q]]
            else:
                doc = {"id": "w%d-%d" % (c, r),
                       "text": "Written by client %d in round %d." % (c, r)}
                resp = session.post(s.url + "/collections/w/documents",
                                    json={"documents": [doc]},
                                    timeout=TIMEOUT * 3)
                assert resp.status_code == 200, resp.text
                with lock:
                    written.append(doc)
        return True

    with cf.ThreadPoolExecutor(n_clients) as ex:
        assert all(f.result() for f in
                   [ex.submit(client, c) for c in range(n_clients)])
    cols = {c["name"]: c for c in s.get("/collections").json()["collections"]}
    assert cols["w"]["documents"] == len(written)
    for doc in written[::7]:
        got = s.get("/collections/w/documents/" + doc["id"]).json()
        assert got["chunks"][0]["text"] == doc["text"]
    # the forward passes were shared
    m = s.get("/metrics").text
    batches = int(m.split("\nlode_batches_total ")[1].split()[0])
    texts = int(m.split("\nlode_batch_texts_total ")[1].split()[0])
    assert texts > batches
