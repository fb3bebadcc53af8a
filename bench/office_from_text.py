#!/usr/bin/env python3
"""office_from_text.py TXT_DIR OUT_DIR - write each rendered man page of
TXT_DIR as a Word (.docx) or OpenDocument (.odt) file, alternately, for
bench/docs.sh: paragraphs separated by blank lines become paragraphs, the
man page's section titles (unindented all-caps lines) Heading 1.  Uses the
zip writer of tests/make_fixtures.py."""
import os
import sys
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import make_fixtures  # noqa: E402

W = make_fixtures.W


def blocks(text):
    for para in text.split("\n\n"):
        para = para.strip("\n")
        if not para.strip():
            continue
        first = para.split("\n")[0]
        if first == first.upper() and not first.startswith(" ") and \
                any(c.isalpha() for c in first) and len(first) < 60:
            yield "h", first.strip()
            para = "\n".join(para.split("\n")[1:])
            if not para.strip():
                continue
        yield "p", " ".join(line.strip() for line in para.split("\n"))


def docx(text):
    body = []
    for kind, t in blocks(text):
        style = '<w:pPr><w:pStyle w:val="Heading1"/></w:pPr>' if kind == "h" else ""
        body.append('<w:p>%s<w:r><w:t xml:space="preserve">%s</w:t></w:r></w:p>'
                    % (style, escape(t)))
    files = dict(make_fixtures.docx_files())
    files["word/document.xml"] = ('<?xml version="1.0" encoding="UTF-8"?>'
                                  '<w:document %s><w:body>%s</w:body></w:document>'
                                  % (W, "".join(body)))
    return list(files.items())


def odt(text):
    body = []
    for kind, t in blocks(text):
        if kind == "h":
            body.append('<text:h text:outline-level="1">%s</text:h>' % escape(t))
        else:
            body.append("<text:p>%s</text:p>" % escape(t))
    files = dict(make_fixtures.odt_files())
    files["content.xml"] = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
        '<office:body><office:text>%s</office:text></office:body>'
        '</office:document-content>' % "".join(body))
    files.pop("meta.xml", None)
    return list(files.items())


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for i, name in enumerate(sorted(os.listdir(src))):
        text = open(os.path.join(src, name), encoding="utf-8", errors="replace").read()
        base = os.path.splitext(name)[0]
        if i % 2 == 0:
            make_fixtures.write_zip(os.path.join(out, base + ".docx"), docx(text))
        else:
            make_fixtures.write_zip(os.path.join(out, base + ".odt"), odt(text))


if __name__ == "__main__":
    main()
