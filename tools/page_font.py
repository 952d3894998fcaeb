"""The learner page's Japanese font, made again: a subset of Noto Sans CJK JP Regular (SIL Open
Font License 1.1, from Debian's fonts-noto-cjk) with the kana, the CJK punctuation and full-width
forms, the Jōyō kanji (tools/joyo_kanji.txt) and every other Japanese character that the
package's own text holds (the page, the lessons, the comparison's words, the server's messages),
written as WOFF2 into the page's static folder with its licence beside it. style.css names it in
an @font-face; the page serves it like its other static files, so it works with no internet.

A build step, not a runtime dependency:

    apt-get install fonts-noto-cjk
    pip install fonttools brotli
    python tools/page_font.py            # prints what it wrote and the size

Run it again when the package's Japanese text gains a character outside the Jōyō kanji
(tests/test_page_layout.py fails on such a character, naming it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "rtmri"
STATIC = PACKAGE / "streamer" / "server" / "static"
JOYO = Path(__file__).with_name("joyo_kanji.txt")
SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
SOURCE_LICENCE = Path("/usr/share/doc/fonts-noto-cjk/copyright")
FACE = "Noto Sans CJK JP"
FONT_FILE = "NotoSansJP-subset.woff2"
LICENCE_FILE = "NotoSansJP-subset-OFL.txt"
TEXT_SUFFIXES = (".py", ".js", ".html", ".css", ".json")
# Always in the font: kana, CJK symbols and punctuation, full- and half-width forms.
BLOCKS = ((0x3000, 0x303F), (0x3040, 0x309F), (0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF00, 0xFFEF))
# Taken from the package's text: the blocks above and the CJK ideographs.
JAPANESE = BLOCKS + ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))
NAME_IDS = (0, 1, 2, 3, 4, 5, 6, 13, 14)  # the copyright and licence (0, 13, 14) stay in the file


class FontBuildError(Exception):
    pass


def is_japanese(char: str) -> bool:
    return any(lo <= ord(char) <= hi for lo, hi in JAPANESE)


def joyo_kanji(path: Path = JOYO) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {c for line in lines if not line.startswith("#") for c in line.strip()}


def package_text(root: Path = PACKAGE) -> set[str]:
    """Every Japanese character in the package's text files."""
    found: set[str] = set()
    for path in sorted(root.rglob("*")):
        if path.suffix not in TEXT_SUFFIXES or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise FontBuildError(f"{path}: not UTF-8 text ({exc})") from exc
        found.update(c for c in text if is_japanese(c))
    return found


def block_characters() -> set[str]:
    return {chr(c) for lo, hi in BLOCKS for c in range(lo, hi + 1)}


def japanese_face(source: Path):
    from fontTools.ttLib import TTCollection, TTFont

    if not source.exists():
        raise FontBuildError(f"{source}: no such font (apt-get install fonts-noto-cjk)")
    faces = [f["name"].getDebugName(1) for f in TTCollection(str(source), lazy=True).fonts]
    if FACE not in faces:
        raise FontBuildError(f"{source}: no face {FACE!r} (it has {', '.join(faces)})")
    return TTFont(str(source), fontNumber=faces.index(FACE), recalcTimestamp=False)


def subset(font, chars: set[str]):
    """The font cut down to chars (those it has); returns the code points it kept."""
    from fontTools import subset as fontsubset

    options = fontsubset.Options()
    options.flavor = "woff2"
    options.name_IDs = list(NAME_IDS)
    options.hinting = False  # hinting adds a third and does little on screens at these sizes
    options.desubroutinize = True  # compresses better in WOFF2
    subsetter = fontsubset.Subsetter(options)
    subsetter.populate(unicodes=sorted(ord(c) for c in chars))
    subsetter.subset(font)
    font.flavor = "woff2"
    return set(font.getBestCmap())


def ofl_text(copyright_file: Path = SOURCE_LICENCE) -> str:
    """The SIL OFL 1.1 as Debian's copyright file for fonts-noto-cjk gives it."""
    if not copyright_file.exists():
        raise FontBuildError(f"{copyright_file}: missing (apt-get install fonts-noto-cjk)")
    lines = copyright_file.read_text(encoding="utf-8").splitlines()
    try:
        start = lines.index("License: SIL-1.1", lines.index("License: SIL-1.1") + 1)  # the text, after the Files: stanza
    except ValueError as exc:
        raise FontBuildError(f"{copyright_file}: no SIL-1.1 licence text") from exc
    body = []
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        body.append("" if line.strip() == "." else line[1:])
    return "\n".join(body).strip() + "\n"


def licence(font, kept: int) -> str:
    name = font["name"]
    return (f"{FONT_FILE}: a subset of {name.getDebugName(4)} ({name.getDebugName(5).split(';')[0]}, from Debian's\n"
            f"fonts-noto-cjk), {kept} characters, made by tools/page_font.py. A Modified Version under the\n"
            f"licence below; the original's copyright notice:\n\n{name.getDebugName(0)}\n"
            f"{name.getDebugName(13)}\n\n{ofl_text()}")


def build(out: Path = STATIC, source: Path = SOURCE) -> tuple[Path, int, int]:
    """Writes the font and its licence into out; returns (font path, characters kept, bytes)."""
    font = japanese_face(source)
    needed = joyo_kanji() | package_text()
    kept = subset(font, needed | block_characters())
    target = out / FONT_FILE
    font.save(str(target))
    (out / LICENCE_FILE).write_text(licence(font, len(kept)), encoding="utf-8")
    missing = sorted(c for c in needed if ord(c) not in kept)
    if missing:
        print(f"page_font: {source} has no glyph for {len(missing)} needed characters: {''.join(missing[:40])}",
              file=sys.stderr)
    return target, len(kept), target.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=STATIC, help="folder to write into (default: the page's static folder)")
    parser.add_argument("--source", type=Path, default=SOURCE, help="Noto Sans CJK collection (.ttc)")
    args = parser.parse_args(argv)
    try:
        path, kept, size = build(args.out, args.source)
    except (FontBuildError, ImportError) as exc:
        print(f"page_font: {exc}", file=sys.stderr)
        return 1
    print(f"page_font: wrote {path} ({kept} characters, {size / 1024:.0f} KiB) and {path.with_name(LICENCE_FILE).name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
