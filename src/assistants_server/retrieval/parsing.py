"""Plain text out of an uploaded file, for indexing by file_search.

The parser is chosen by the file's extension, over the list OpenAI's hosted vector stores
accepted. A file that cannot be indexed raises `UnparsableFile`, whose code and message become
the vector store file's `last_error`; its message is written for the user who uploaded the file.
Synchronous on purpose: callers run it in a worker thread.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Literal

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

ErrorCode = Literal["unsupported_file", "invalid_file"]

# Plain text and source code: indexed as decoded, byte for byte.
TEXT_EXTENSIONS = frozenset(
    {
        ".c", ".cpp", ".cs", ".css", ".go", ".h", ".hpp", ".ini", ".java", ".js", ".jsx", ".kt",
        ".log", ".markdown", ".md", ".php", ".py", ".rb", ".rs", ".rst", ".sh", ".sql", ".swift",
        ".tex", ".toml", ".ts", ".tsx", ".txt", ".xml", ".yaml", ".yml",
    }
)


class UnparsableFile(Exception):
    """A file that cannot be indexed; `code` follows VectorStoreFile.last_error.code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


def extract_text(data: bytes, filename: str) -> str:
    """The text of `data` to index, chosen by `filename`'s extension."""
    extension = PurePath(filename).suffix.lower()
    parser = _PARSERS.get(extension)
    if parser is None:
        raise UnparsableFile("unsupported_file", _unsupported_message(filename, extension))
    text = parser(data, filename)
    if not text or text.isspace():
        raise UnparsableFile("invalid_file", "the file has no text to index")
    return text


def supported_extensions() -> list[str]:
    return sorted(_PARSERS)


def _unsupported_message(filename: str, extension: str) -> str:
    kind = f"{extension} files are" if extension else "files without an extension are"
    return (
        f"{filename}: {kind} not supported by file_search; upload text, source code, "
        f"Markdown, HTML, JSON, CSV, PDF or DOCX ({' '.join(supported_extensions())})"
    )


# UTF-32 marks first: the UTF-32-LE mark begins with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)


def decode_text(data: bytes, filename: str) -> str:
    """Bytes of a text file as str: by its byte-order mark, else UTF-8, else a legacy 8-bit
    encoding. NUL characters mean the file is binary, whatever its name says."""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise UnparsableFile(
                    "invalid_file",
                    f"{filename} starts with a {label} byte-order mark but is not valid {label} "
                    f"(byte {exc.start}: {exc.reason}); re-save it as UTF-8 and upload again",
                ) from None
            break
    else:
        if b"\x00" in data:
            raise _binary(filename)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _decode_legacy(data)
    if "\x00" in text:
        raise _binary(filename)
    return text


def _decode_legacy(data: bytes) -> str:
    # Text that is not UTF-8 is most often from Windows; Windows-1252 maps its quotes and
    # dashes to the right characters where Latin-1 would give control codes. Latin-1 decodes
    # any byte, so it is the last resort.
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _binary(filename: str) -> UnparsableFile:
    return UnparsableFile(
        "invalid_file",
        f"{filename} contains binary data (NUL bytes), not text; upload the document in a "
        "supported format with its real extension",
    )


def _parse_text(data: bytes, filename: str) -> str:
    return decode_text(data, filename)


def _parse_csv(data: bytes, filename: str) -> str:
    # Rows as lines; CRLF from spreadsheet exports would only add noise to every chunk.
    return decode_text(data, filename).replace("\r\n", "\n").replace("\r", "\n")


def _parse_json(data: bytes, filename: str) -> str:
    text = decode_text(data, filename)
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnparsableFile(
            "invalid_file",
            f"{filename} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
            "fix the file or upload it as .txt",
        ) from None
    except RecursionError:
        raise UnparsableFile(
            "invalid_file", f"{filename} is nested too deeply to read as JSON; upload it as .txt"
        ) from None
    return text


def _parse_html(data: bytes, filename: str) -> str:
    extractor = _HtmlText()
    extractor.feed(decode_text(data, filename))
    extractor.close()
    return extractor.text()


# Elements set apart from their surroundings by a line break on each side (a blank line when
# two meet), and elements that start a new line but end none, so list items and table rows
# stay on consecutive lines.
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "details", "div", "dl",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "title",
        "ul",
    }
)
_LINE_TAGS = frozenset({"br", "dd", "dt", "li", "tr"})
_CELL_TAGS = frozenset({"td", "th"})
_HIDDEN_TAGS = frozenset({"script", "style", "template"})
_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")


class _HtmlText(HTMLParser):
    """What a browser would show of a page, with block elements on lines of their own."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive unescaped in handle_data
        self._parts: list[str] = []
        self._hidden = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, +1)

    def handle_endtag(self, tag: str) -> None:
        self._tag(tag, -1)
        if tag in _CELL_TAGS:
            self._parts.append("\t")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/> is one line break; and <script/> opens nothing, so no counter moves.
        if tag in _BLOCK_TAGS or tag in _LINE_TAGS:
            self._parts.append("\n")

    def _tag(self, tag: str, step: int) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden + step)
        elif tag == "pre":
            self._pre = max(0, self._pre + step)
        if tag in _BLOCK_TAGS or (step > 0 and tag in _LINE_TAGS):
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if not self._pre:
            data = _SPACES.sub(" ", data)
            if not self._parts or self._parts[-1][-1] in "\n\t":
                data = data.lstrip(" ")
        if data:
            self._parts.append(data)

    def text(self) -> str:
        lines = "".join(self._parts).split("\n")
        return _BLANK_RUNS.sub("\n\n", "\n".join(line.rstrip() for line in lines)).strip()


def _parse_pdf(data: bytes, filename: str) -> str:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise UnparsableFile(
                "invalid_file",
                f"{filename} is encrypted; upload a copy without a password",
            )
        pages = [page.extract_text() for page in reader.pages]
    except UnparsableFile:
        raise
    except DependencyError as exc:
        raise UnparsableFile(
            "invalid_file",
            f"{filename} is encrypted with a cipher this server cannot open ({exc}); "
            "upload a copy without encryption",
        ) from None
    except Exception as exc:  # pypdf raises many kinds for damaged files
        raise UnparsableFile(
            "invalid_file",
            f"{filename} is not a readable PDF ({exc}); check that the upload is a complete, "
            "undamaged PDF",
        ) from None
    text = "\n\n".join(page for page in pages if page and not page.isspace())
    if not text:
        raise UnparsableFile(
            "invalid_file",
            f"{filename} has no extractable text (scanned pages are only images); run OCR on "
            "it or upload a text version",
        )
    return text


def _parse_docx(data: bytes, filename: str) -> str:
    try:
        document = docx.Document(io.BytesIO(data))
        return "\n".join(_docx_blocks(document.iter_inner_content()))
    except Exception as exc:  # python-docx, zipfile, lxml all raise their own
        raise UnparsableFile(
            "invalid_file",
            f"{filename} is not a readable Word document ({exc}); open it in Word and save "
            "it again as .docx",
        ) from None


def _docx_blocks(content: Iterable[Paragraph | Table]) -> list[str]:
    """Paragraphs as lines and table rows as lines of tab-separated cells, in document order."""
    lines: list[str] = []
    for block in content:
        if isinstance(block, Paragraph):
            lines.append(block.text)
        elif isinstance(block, Table):
            lines.extend(_docx_rows(block))
    return lines


def _docx_rows(table: Table) -> list[str]:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            # A merged cell is repeated once per grid column it spans; keep it once.
            if cell._tc is previous:
                continue
            previous = cell._tc
            cells.append("\n".join(_docx_blocks(cell.iter_inner_content())))
        rows.append("\t".join(cells))
    return rows


_Parser = Callable[[bytes, str], str]
_PARSERS: dict[str, _Parser] = {
    **dict.fromkeys(TEXT_EXTENSIONS, _parse_text),
    ".csv": _parse_csv,
    ".json": _parse_json,
    ".html": _parse_html,
    ".htm": _parse_html,
    ".pdf": _parse_pdf,
    ".docx": _parse_docx,
}
