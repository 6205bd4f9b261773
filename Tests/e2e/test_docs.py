"""Doc tests: the README's walkthrough, run as written against a real server, prints what the
README shows (docs/operations.md, "Docs that cannot drift").

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
from pathlib import Path

from aviary_e2e import Server

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


def walkthrough(readme: str) -> list[tuple[str, str | None]]:
    """(sh block, the output block after it or None), in order."""
    start = readme.index("To build it up by hand")
    end = readme.index("\n## ", start)
    lines = readme[start:end].splitlines()
    blocks: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            lang = lines[i][3:].strip()
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            blocks.append((lang, lines[i + 1:j]))
            i = j + 1
        else:
            i += 1
    pairs: list[tuple[str, str | None]] = []
    for k, (lang, body) in enumerate(blocks):
        if lang != "sh":
            continue
        following = blocks[k + 1] if k + 1 < len(blocks) else None
        output = "\n".join(following[1]) if following and following[0] != "sh" else None
        pairs.append(("\n".join(body), output))
    return pairs


def as_pattern(expected: str) -> re.Pattern[str]:
    """The README's output as a regex: literal, with `…` matching anything."""
    parts = [re.escape(part) for part in mask(expected).split("…")]
    return re.compile("(?s)" + ".*?".join(parts))


def test_the_readme_walkthrough_prints_what_it_shows(aviary: Server, tmp_path: Path):
    pairs = walkthrough((REPO_ROOT / "README.md").read_text())
    assert len(pairs) >= 7, pairs
    (tmp_path / ".aviary").mkdir()
    (tmp_path / ".aviary" / "admin_key").write_text(aviary.admin_token + "\n")
    script = ["set -e", 'curl() { command curl "$@"; echo; }']
    for sh, _ in pairs:
        # A person takes longer than this between commands: exposures are written every 200 ms.
        script += ["sleep 0.5", f"echo '{MARK}'", sh.replace("http://127.0.0.1:8080", aviary.url)]
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    outputs = result.stdout.split(MARK + "\n")[1:]
    assert len(outputs) == len(pairs), result.stdout
    differences = []
    for (sh, expected), actual in zip(pairs, outputs):
        if expected is None:
            continue
        got = mask(actual.replace("\r\n", "\n")).strip("\n")
        if not as_pattern(expected.strip("\n")).fullmatch(got):
            differences.append(f"README block\n{sh}\nshows\n{expected}\nbut printed\n{got}\n")
    assert not differences, "\n".join(differences)
