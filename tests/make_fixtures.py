#!/usr/bin/env python3
"""make_fixtures.py - write small PDF, DOCX and ODT files for lode's tests.

    python3 tests/make_fixtures.py DIR

Everything is built here from the file formats' specifications (PDF 1.4 with
the standard Helvetica font, OOXML WordprocessingML and ODF text documents as
zip files with the standard library's zipfile), so the tests need no office
suite and the fixtures are byte-for-byte the same on every machine:

  paged.pdf       3 pages with an outline (Install > Linux on page 2,
                  Usage on page 3) and an Info title with escapes;
                  page 2 says "zebra firmware".
  scan.pdf        one page holding only an image: no text layer.
  broken.pdf      paged.pdf cut in half.
  handbook.docx   Title, Heading 1/2 paragraphs, a list, a table.
  handbook.odt    the same content as an OpenDocument text.
  broken.docx / broken.odt   the files cut in half.
  truncated.odt   a whole zip whose content.xml stops mid-element.
  bomb.docx       word/document.xml of 200 MiB of one repeated byte,
                  deflated to about 200 KiB (ratio ~1000).
  many.docx       20,000 empty zip entries.
"""
import os
import sys
import zipfile
import zlib


def pdf_bytes(pages, outline=None, image_only=False, info_title=None):
    """pages: list of lists of text lines.  outline: list of
    (title, page_index, level) in document order.  info_title: the Info
    dictionary's /Title, as PDF literal-string syntax (bytes)."""
    objs = {}
    n_pages = len(pages)
    # 1 catalog, 2 pages, 3 font, then per page: page, contents
    page_ids = [4 + 2 * i for i in range(n_pages)]
    next_id = 4 + 2 * n_pages
    outline_root = None
    if outline:
        outline_root = next_id
        next_id += 1
        item_ids = list(range(next_id, next_id + len(outline)))
        next_id += len(outline)
    img_id = None
    if image_only:
        img_id = next_id
        next_id += 1
    cat = "<< /Type /Catalog /Pages 2 0 R"
    if outline_root:
        cat += " /Outlines %d 0 R /PageMode /UseOutlines" % outline_root
    objs[1] = (cat + " >>").encode()
    objs[2] = ("<< /Type /Pages /Kids [%s] /Count %d >>" % (
        " ".join("%d 0 R" % p for p in page_ids), n_pages)).encode()
    objs[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    for i, lines in enumerate(pages):
        pid = page_ids[i]
        res = "/Font << /F1 3 0 R >>"
        if image_only:
            res = "/XObject << /Im1 %d 0 R >>" % img_id
            stream = b"q 200 0 0 200 100 500 cm /Im1 Do Q"
        else:
            ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
            for line in lines:
                esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                ops.append("(%s) Tj T*" % esc)
            ops.append("ET")
            stream = "\n".join(ops).encode("latin-1")
        objs[pid] = ("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                     "/Resources << %s >> /Contents %d 0 R >>" % (res, pid + 1)).encode()
        objs[pid + 1] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    if image_only:
        pix = bytes([(x * 7 + y * 3) & 0xFF for y in range(16) for x in range(16)])
        objs[img_id] = (b"<< /Type /XObject /Subtype /Image /Width 16 /Height 16 "
                        b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Length %d >>\nstream\n"
                        % len(pix) + pix + b"\nendstream")
    if outline:
        # Build the tree from levels: parent = last item of level - 1.
        parents, children = {}, {None: []}
        stack = []
        for k, (title, page, level) in enumerate(outline):
            while stack and outline[stack[-1]][2] >= level:
                stack.pop()
            parent = stack[-1] if stack else None
            parents[k] = parent
            children.setdefault(parent, []).append(k)
            children.setdefault(k, [])
            stack.append(k)
        for k, (title, page, level) in enumerate(outline):
            sib = children[parents[k]]
            pos = sib.index(k)
            d = "<< /Title (%s) /Parent %d 0 R /Dest [%d 0 R /XYZ 0 792 0]" % (
                title, item_ids[parents[k]] if parents[k] is not None else outline_root,
                page_ids[page])
            if pos > 0:
                d += " /Prev %d 0 R" % item_ids[sib[pos - 1]]
            if pos + 1 < len(sib):
                d += " /Next %d 0 R" % item_ids[sib[pos + 1]]
            if children[k]:
                d += " /First %d 0 R /Last %d 0 R /Count %d" % (
                    item_ids[children[k][0]], item_ids[children[k][-1]], len(children[k]))
            objs[item_ids[k]] = (d + " >>").encode()
        top = children[None]
        objs[outline_root] = ("<< /Type /Outlines /First %d 0 R /Last %d 0 R /Count %d >>" % (
            item_ids[top[0]], item_ids[top[-1]], len(outline))).encode()
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for i in sorted(objs):
        offsets[i] = len(out)
        out += b"%d 0 obj\n" % i + objs[i] + b"\nendobj\n"
    xref = len(out)
    n = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % n
    for i in range(1, n):
        out += b"%010d 00000 n \n" % offsets[i]
    info = b" /Info << /Title (%s) >>" % info_title if info_title else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (n, info, xref)
    return bytes(out)


PAGES = [
    ["Fernhill handbook", "", "This handbook explains how to install the",
     "sensor gateway and how to use it every day."],
    ["Install", "Linux", "On Linux the gateway needs the zebra firmware",
     "package before the first start. Run the installer as root."],
    ["Usage", "Open the dashboard in a browser and sign in with",
     "the account your administrator gave you."],
]
OUTLINE = [("Install", 1, 1), ("Linux", 1, 2), ("Usage", 2, 1)]
# PDFDocEncoding with escapes: "Fernhill gateway guide (2nd ed.) \u2013 \xe9t\xe9"
PAGED_TITLE = b"Fernhill  gateway guide \\(2nd ed.\\) \\205 \\351t\\351"

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def docx_files():
    def p(text, style=None, num=False):
        ppr = ""
        if style or num:
            ppr = "<w:pPr>%s%s</w:pPr>" % (
                '<w:pStyle w:val="%s"/>' % style if style else "",
                '<w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr>' if num else "")
        return "<w:p>%s<w:r><w:t xml:space=\"preserve\">%s</w:t></w:r></w:p>" % (ppr, text)
    cell = lambda t: "<w:tc>%s</w:tc>" % p(t)
    body = "".join([
        p("Fernhill handbook", "Title"),
        p("This handbook explains the sensor gateway."),
        p("Install", "Heading1"),
        p("Linux", "Heading2"),
        p("On Linux the gateway needs the zebra firmware package."),
        p("Download the package", num=True),
        p("Run the installer as root", num=True),
        p("Usage", "Heading1"),
        "<w:tbl><w:tr>%s%s</w:tr><w:tr>%s%s</w:tr></w:tbl>" % (
            cell("Port"), cell("Service"), cell("8443"), cell("dashboard")),
        p("Open the dashboard in a browser."),
    ])
    document = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<w:document %s><w:body>%s</w:body></w:document>' % (W, body))
    styles = ('<?xml version="1.0" encoding="UTF-8"?><w:styles %s>'
              '<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/></w:style>'
              '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/>'
              '<w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>'
              '<w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/>'
              '<w:basedOn w:val="Heading1"/><w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style>'
              '</w:styles>' % W)
    core = ('<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties '
            'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Fernhill handbook</dc:title>'
            '</cp:coreProperties>')
    types = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
             'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
             '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
             'officedocument.wordprocessingml.document.main+xml"/></Types>')
    return [("[Content_Types].xml", types), ("word/document.xml", document),
            ("word/styles.xml", styles), ("docProps/core.xml", core)]


def odt_files():
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"')
    cell = lambda t: "<table:table-cell><text:p>%s</text:p></table:table-cell>" % t
    body = "".join([
        '<text:p text:style-name="Title">Fernhill handbook</text:p>',
        "<text:p>This handbook explains the<text:s/>sensor gateway.</text:p>",
        '<text:h text:outline-level="1">Install</text:h>',
        '<text:h text:outline-level="2">Linux</text:h>',
        "<text:p>On Linux the gateway needs the <text:span>zebra firmware</text:span> package.</text:p>",
        "<text:list><text:list-item><text:p>Download the package</text:p></text:list-item>"
        "<text:list-item><text:p>Run the installer as root</text:p></text:list-item></text:list>",
        '<text:h text:outline-level="1">Usage</text:h>',
        "<table:table><table:table-row>%s%s</table:table-row><table:table-row>%s%s"
        "</table:table-row></table:table>" % (cell("Port"), cell("Service"), cell("8443"),
                                              cell("dashboard")),
        "<text:p>Open the dashboard in a browser.</text:p>",
    ])
    content = ('<?xml version="1.0" encoding="UTF-8"?><office:document-content %s>'
               '<office:body><office:text>%s</office:text></office:body>'
               '</office:document-content>' % (ns, body))
    meta = ('<?xml version="1.0" encoding="UTF-8"?><office:document-meta '
            'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><office:meta>'
            '<dc:title>Fernhill handbook</dc:title></office:meta></office:document-meta>')
    return [("mimetype", "application/vnd.oasis.opendocument.text"),
            ("content.xml", content), ("meta.xml", meta)]


def write_zip(path, files):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            z.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data,
                       zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED)


def write_bomb(path, size=200 << 20):
    # Stream a deflated entry of `size` spaces without holding it.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in docx_files():
            if name != "word/document.xml":
                z.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data)
        info = zipfile.ZipInfo("word/document.xml", (2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as f:
            block = b" " * (1 << 20)
            for _ in range(size >> 20):
                f.write(block)


def cut(path, data):
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    j = lambda n: os.path.join(out, n)
    paged = pdf_bytes(PAGES, OUTLINE, info_title=PAGED_TITLE)
    open(j("paged.pdf"), "wb").write(paged)
    open(j("scan.pdf"), "wb").write(pdf_bytes([[]], image_only=True))
    cut(j("broken.pdf"), paged)
    write_zip(j("handbook.docx"), docx_files())
    write_zip(j("handbook.odt"), odt_files())
    cut(j("broken.docx"), open(j("handbook.docx"), "rb").read())
    cut(j("broken.odt"), open(j("handbook.odt"), "rb").read())
    write_zip(j("truncated.odt"), [(n, d[: len(d) * 2 // 3]) if n == "content.xml"
                                   else (n, d) for n, d in odt_files()])
    write_bomb(j("bomb.docx"))
    write_zip(j("many.docx"), docx_files() + [("x/%d" % i, "") for i in range(20000)])


if __name__ == "__main__":
    main()
