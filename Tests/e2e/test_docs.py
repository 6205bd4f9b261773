"""Doc tests: the README's walkthrough and docs/integrations.md's setup and Python OpenFeature
example, run as written against a real server, print what the documents show.

The walkthrough — from "To build it up by hand" to the next `## ` heading — is a series of
```sh blocks, most followed by a block of what they print. This runs every sh block in order in
one bash (so `CLIENT` and `EVENTS` carry over), against a fresh server on this module's database,
with `http://127.0.0.1:8080` pointing at it and `.aviary/admin_key` holding its admin key, half a
second apart (a person is slower). Each curl's answer ends with a newline, as the README shows
them one per line.

What may differ is masked on both sides: times, key secrets and key ids. `…` in the README stands
for anything (within a line or across lines). Everything else must match byte for byte.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from aviary_e2e import Server, create_client_key

REPO_ROOT = Path(__file__).resolve().parents[2]
MARK = "@@aviary-doc-block@@"

MASKS = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<time>"),
    (re.compile(r"avk_[0-9a-f]{8,}"), "<secret>"),
    (re.compile(r"key_(?!bootstrap)[0-9a-f]{8,}"), "<key-id>"),
]


def mask(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def fenced(text: str) -> list[tuple[str, str]]:
    """The fenced blocks of a Markdown text: (language, body), in order."""
    lines = text.splitlines()
    blocks: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            lang = lines[i][3:].strip()
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            blocks.append((lang, "\n".join(lines[i + 1:j])))
            i = j + 1
        else:
            i += 1
    return blocks


def walkthrough_blocks(text: str) -> list[tuple[str, str | None]]:
    """(sh block, the output block after it or None), in order."""
    blocks = fenced(text)
    pairs: list[tuple[str, str | None]] = []
    for k, (lang, body) in enumerate(blocks):
        if lang != "sh":
            continue
        following = blocks[k + 1] if k + 1 < len(blocks) else None
        pairs.append((body, following[1] if following and following[0] != "sh" else None))
    return pairs


def walkthrough(readme: str) -> list[tuple[str, str | None]]:
    """The README's walkthrough: from "To build it up by hand" to the next `## ` heading."""
    start = readme.index("To build it up by hand")
    return walkthrough_blocks(readme[start:readme.index("\n## ", start)])


def as_pattern(expected: str) -> re.Pattern[str]:
    """The README's output as a regex: literal, with `…` matching anything."""
    parts = [re.escape(part) for part in mask(expected).split("…")]
    return re.compile("(?s)" + ".*?".join(parts))


def run_blocks(server: Server, pairs: list[tuple[str, str | None]], cwd: Path, prelude: str = "") -> list[str]:
    """Every differing (block, shown, printed), after running the sh blocks in one bash."""
    script = ["set -e", 'curl() { command curl "$@"; echo; }', prelude]
    for sh, _ in pairs:
        # A person takes longer than this between commands: exposures are written every 200 ms.
        script += ["sleep 0.5", f"echo '{MARK}'", sh.replace("http://127.0.0.1:8080", server.url)]
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    outputs = result.stdout.split(MARK + "\n")[1:]
    assert len(outputs) == len(pairs), result.stdout
    differences = []
    for (sh, expected), actual in zip(pairs, outputs):
        if expected is None:
            continue
        got = mask(actual.replace("\r\n", "\n")).strip("\n")
        if not as_pattern(expected.strip("\n")).fullmatch(got):
            differences.append(f"block\n{sh}\nshows\n{expected}\nbut printed\n{got}\n")
    return differences


@pytest.fixture(scope="module")
def walked(aviary: Server, tmp_path_factory) -> tuple[Server, Path, list[str]]:
    """The README's walkthrough, run once: the server, the directory, the differences."""
    pairs = walkthrough((REPO_ROOT / "README.md").read_text())
    assert len(pairs) >= 7, pairs
    cwd = tmp_path_factory.mktemp("readme")
    (cwd / ".aviary").mkdir()
    (cwd / ".aviary" / "admin_key").write_text(aviary.admin_token + "\n")
    return aviary, cwd, run_blocks(aviary, pairs, cwd)


def test_the_readme_walkthrough_prints_what_it_shows(walked):
    _, _, differences = walked
    assert not differences, "\n".join(differences)


def test_the_integrations_page_builds_on_it_and_its_python_example_prints_what_it_shows(walked):
    server, cwd, readme = walked
    assert not readme, "the README's walkthrough differs; see the test above"
    page = (REPO_ROOT / "docs" / "integrations.md").read_text()
    setup = page[page.index("three changes this page makes first"):]
    pairs = walkthrough_blocks(setup)[:1]
    differences = run_blocks(server, pairs, cwd, prelude="export AVIARY_KEY=$(cat .aviary/admin_key)")
    assert not differences, "\n".join(differences)

    # The Python OpenFeature example, with this server's address and a client key.
    example = next(b for lang, b in fenced(page) if lang == "python" and "OFREPProvider(" in b)
    key = create_client_key(server, "docs")
    code = example.replace('"http://127.0.0.1:8080"', repr(server.url)).replace('"avk_…"', repr(key))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = example.splitlines()
    shown = [lines[i + 1][2:].split("  ")[0].strip() for i, line in enumerate(lines[:-1])
             if line.startswith("print(") and lines[i + 1].startswith("# ")]
    assert result.stdout.splitlines() == shown, (result.stdout, shown)
