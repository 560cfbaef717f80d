"""The example queries are kept once (caomai_db/tap/examples.py): the README's ```adql blocks
are generated from them, its opening query is one of them, and /tap/examples renders them."""

from __future__ import annotations

import re
from pathlib import Path

from caomai_db.tap import examples

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_examples_are_generated_from_the_list() -> None:
    assert examples.markdown_examples() in README, (
        "paste caomai_db.tap.examples.markdown_examples() into the README"
    )
    blocks = re.findall(r"```adql\n(.*?)\n```", README, re.S)
    assert blocks == examples.readme_queries()


def test_readme_opening_query_is_an_example() -> None:
    opening = re.search(r"```sql\n(.*?)\n```", README, re.S)
    assert opening is not None
    ref = re.search(r"fp_similar\(f\.fp, '([^']+)'\)", opening.group(1))
    assert ref is not None
    assert opening.group(1) == examples.by_key("similar-images").query(ref.group(1))


def test_the_examples_document_renders_every_example() -> None:
    doc = examples.document("http://x/tap", ["ivo://a?b/c", "caom:A/b/c"])
    for ex in examples.EXAMPLES:
        assert f'id="{ex.key}"' in doc
    assert "ivo://a?b/c|caom:A/b/c" in doc and "{ref" not in doc and "{band}" not in doc
