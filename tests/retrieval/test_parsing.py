"""extract_text: each supported kind of upload becomes the text file_search indexes, and each
file that cannot be indexed is refused with the code and message its last_error will carry."""

from __future__ import annotations

import codecs
import io
import json
import zipfile

import docx
import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from assistants_server.retrieval.parsing import UnparsableFile, extract_text

PAGE_ONE = "Quarterly revenue grew by twelve percent."
PAGE_TWO = "Operating costs stayed flat through the year."


def _pdf(*pages: str) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.cell(text=text)
    return bytes(pdf.output())


def _encrypted(pdf: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    # RC4: pypdf needs the optional cryptography package for AES.
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _docx() -> bytes:
    document = docx.Document()
    document.add_paragraph("Shipping policy")
    table = document.add_table(rows=2, cols=2)
    for row, cells in enumerate([("Region", "Days"), ("Europe", "3")]):
        for column, text in enumerate(cells):
            table.cell(row, column).text = text
    document.add_paragraph("Returns are free.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _refusal(data: bytes, filename: str) -> UnparsableFile:
    with pytest.raises(UnparsableFile) as caught:
        extract_text(data, filename)
    return caught.value


def test_utf8_text_is_returned_verbatim() -> None:
    text = "Grüße aus Köln\r\n日本語 🙂\n"
    assert extract_text(text.encode(), "notes.txt") == text


def test_utf8_byte_order_mark_is_dropped() -> None:
    assert extract_text(codecs.BOM_UTF8 + "naïve café".encode(), "notes.txt") == "naïve café"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_byte_order_mark_is_decoded(codec: str) -> None:
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    assert extract_text(bom + "Ελληνικά 🙂".encode(codec), "notes.txt") == "Ελληνικά 🙂"


def test_text_that_is_not_utf8_falls_back_to_a_windows_8bit_encoding() -> None:
    data = "“Café” – naïve".encode("cp1252")
    assert extract_text(data, "legacy.txt") == "“Café” – naïve"


def test_undecodable_utf16_after_its_byte_order_mark_is_refused() -> None:
    refusal = _refusal(codecs.BOM_UTF16_LE + b"A\x00\x00\xd8", "broken.txt")
    assert refusal.code == "invalid_file"
    assert "broken.txt" in refusal.message and "UTF-16" in refusal.message


def test_binary_bytes_named_txt_are_refused() -> None:
    refusal = _refusal(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.txt")
    assert refusal.code == "invalid_file"
    assert "photo.txt contains binary data" in refusal.message


def test_extension_is_matched_case_insensitively() -> None:
    assert extract_text(b"# Title\n\nBody", "README.MD") == "# Title\n\nBody"


def test_markdown_keeps_its_markup() -> None:
    text = "# Setup\n\n- install `uv`\n- run **tests**\n"
    assert extract_text(text.encode(), "guide.markdown") == text


def test_python_source_keeps_indentation_and_symbols() -> None:
    source = 'def area(r: float) -> float:\n    """π r²"""\n    return 3.14159 * r**2\n'
    assert extract_text(source.encode(), "geometry.py") == source


def test_html_keeps_visible_text_and_block_structure() -> None:
    page = b"""<!DOCTYPE html><html><head><title>Menu</title>
    <style>body { color: red }</style>
    <script>if (a < b) { document.write("<p>injected</p>") }</script></head>
    <body><h1>Caf&eacute; &lt;Bistro&gt;</h1>
    <p>Open   daily,
       <b>8&nbsp;am</b> &amp; late.</p>
    <ul><li>Tea</li><li>Coffee &#8212; &euro;3</li></ul>
    <p>Line one<br>Line two</p></body></html>"""
    assert extract_text(page, "menu.html") == (
        "Menu\n\nCafé <Bistro>\n\nOpen daily, 8 am & late.\n\nTea\nCoffee — €3\n\n"
        "Line one\nLine two"
    )


def test_html_table_rows_become_lines_of_cells_and_pre_keeps_spacing() -> None:
    page = b"<table><tr><th>Name</th><th>Qty</th></tr><tr><td>Bolt</td><td>4</td></tr></table>"
    page += b"<pre>  x = 1\n    y = 2</pre><script/><p>after</p>"
    assert extract_text(page, "stock.htm") == "Name\tQty\nBolt\t4\n\n  x = 1\n    y = 2\n\nafter"


def test_html_with_only_script_has_no_text_to_index() -> None:
    refusal = _refusal(b"<script>alert('hi')</script><style>p{}</style>", "empty.html")
    assert (refusal.code, refusal.message) == ("invalid_file", "the file has no text to index")


def test_valid_json_is_kept_verbatim() -> None:
    text = '{\n  "name": "Ada",\n  "tags": ["math", "engines"]\n}\n'
    assert extract_text(text.encode(), "person.json") == text
    assert json.loads(extract_text(text.encode(), "person.json"))["name"] == "Ada"


def test_invalid_json_is_refused_with_the_parser_message_and_position() -> None:
    refusal = _refusal(b'{\n  "name": "Ada",\n}', "person.json")
    assert refusal.code == "invalid_file"
    assert refusal.message.startswith("person.json is not valid JSON: Expecting property name")
    assert "line 3 column 1" in refusal.message


def test_csv_rows_become_lines() -> None:
    data = b'city,population\r\n"Paris, FR",2102650\r\nLyon,522250\r\n'
    assert extract_text(data, "cities.csv") == 'city,population\n"Paris, FR",2102650\nLyon,522250\n'


def test_pdf_pages_are_joined_in_order() -> None:
    assert extract_text(_pdf(PAGE_ONE, PAGE_TWO), "report.pdf") == f"{PAGE_ONE}\n\n{PAGE_TWO}"


def test_pdf_encrypted_with_a_user_password_is_refused() -> None:
    refusal = _refusal(_encrypted(_pdf(PAGE_ONE), "secret"), "report.pdf")
    assert refusal.code == "invalid_file"
    assert refusal.message == "report.pdf is encrypted; upload a copy without a password"


def test_pdf_encrypted_with_only_an_owner_password_is_read() -> None:
    assert extract_text(_encrypted(_pdf(PAGE_ONE, PAGE_TWO), ""), "report.pdf") == (
        f"{PAGE_ONE}\n\n{PAGE_TWO}"
    )


@pytest.mark.parametrize(
    "data",
    [_pdf(PAGE_ONE)[:300], b"%PDF-1.7\n1 0 obj garbage", b"plain words, not a PDF"],
    ids=["truncated", "garbage-body", "not-a-pdf"],
)
def test_corrupt_pdf_is_refused(data: bytes) -> None:
    refusal = _refusal(data, "report.pdf")
    assert refusal.code == "invalid_file"
    assert refusal.message.startswith("report.pdf is not a readable PDF (")


def test_pdf_without_a_text_layer_is_refused_with_the_reason() -> None:
    refusal = _refusal(_pdf("", ""), "scan.pdf")
    assert refusal.code == "invalid_file"
    assert "scan.pdf has no extractable text" in refusal.message
    assert "OCR" in refusal.message


def test_docx_paragraphs_and_table_cells_come_in_document_order() -> None:
    assert extract_text(_docx(), "policy.docx") == (
        "Shipping policy\nRegion\tDays\nEurope\t3\nReturns are free."
    )


def test_corrupt_docx_is_refused() -> None:
    refusal = _refusal(_docx()[:200], "policy.docx")
    assert refusal.code == "invalid_file"
    assert refusal.message.startswith("policy.docx is not a readable Word document (")


def test_zip_that_is_not_a_word_document_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert _refusal(out.getvalue(), "policy.docx").code == "invalid_file"


@pytest.mark.parametrize("filename", ["setup.exe", "photo.PNG", "old.doc", "deck.pptx"])
def test_unsupported_extension_is_refused_naming_it(filename: str) -> None:
    refusal = _refusal(b"anything", filename)
    extension = filename[filename.rindex(".") :].lower()
    assert refusal.code == "unsupported_file"
    assert refusal.message.startswith(f"{filename}: {extension} files are not supported")
    assert ".pdf" in refusal.message and ".docx" in refusal.message


def test_file_without_extension_is_unsupported() -> None:
    refusal = _refusal(b"text", "Makefile")
    assert refusal.code == "unsupported_file"
    assert "without an extension" in refusal.message


def test_whitespace_only_text_has_no_text_to_index() -> None:
    refusal = _refusal(b" \n\t\r\n", "blank.txt")
    assert (refusal.code, refusal.message) == ("invalid_file", "the file has no text to index")
