"""The README and doc/ stay true to the code and to each other.

* every node's page holds its parameter table, generated from the node's own table, and current;
* the README is a short entry (at most 330 lines) that opens with a table of contents;
* every relative link in README.md, doc/**/*.md and the benchmarks' pages (bench/README.md,
  bench/results/HISTORY.md) leads to a file that exists (and, with a ``#fragment`` into a
  Markdown file, to one of its headings).
"""

import re
from pathlib import Path

import pytest

from nn_one_node.tools import docs

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / 'README.md'
README_MAX_LINES = 330

_FENCE = re.compile(r'^(```|~~~).*?^\1[^\n]*$', re.S | re.M)
_CODE = re.compile(r'(`+)(?:(?!\1).)+?\1', re.S)
_INLINE_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
_REFERENCE = re.compile(r'^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$', re.M)


def markdown_files():
    """The README, doc/, and the benchmarks' own pages."""
    return ([README] + sorted((ROOT / 'doc').rglob('*.md'))
            + [ROOT / 'bench' / 'README.md', ROOT / 'bench' / 'results' / 'HISTORY.md'])


def prose(text):
    """The text without fenced code blocks and code spans (links there are not links)."""
    return _CODE.sub('', _FENCE.sub('', text))


def links(text):
    body = prose(text)
    return _INLINE_LINK.findall(body) + _REFERENCE.findall(body)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r'`|\*\*|\*|_(?=\W|$)|(?<=\W)_', '', heading.strip()).lower()
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', text)
    return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def anchors(path):
    seen = {}
    result = set()
    for line in _FENCE.sub('', path.read_text()).splitlines():
        m = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f'{base}-{n}')
    return result


def test_slug_is_githubs():
    assert slug('The predictor (`ros2 run nn_one_node predictor`)') == \
        'the-predictor-ros2-run-nn_one_node-predictor'
    assert slug('Reliability: hostile input, faults, load') == \
        'reliability-hostile-input-faults-load'
    assert slug('Managed (lifecycle) nodes') == 'managed-lifecycle-nodes'


@pytest.mark.parametrize('node', sorted(docs.PAGES))
def test_every_node_page_has_its_current_table(node):
    page = ROOT / docs.PAGES[node]
    assert page.is_file(), f'{docs.PAGES[node]} is missing'
    text = page.read_text()
    assert f'<!-- params:{node} -->' in text and f'<!-- /params:{node} -->' in text, \
        f'{docs.PAGES[node]} has no parameter table block for {node}'
    assert docs.render(text) == text, 'run: python -m nn_one_node.tools.docs'


def test_every_generated_table_in_the_docs_is_current():
    for path in markdown_files():
        text = path.read_text()
        assert docs.render(text) == text, f'{path}: run python -m nn_one_node.tools.docs {path}'


def test_every_node_has_a_page():
    assert set(docs.node_tables()) == set(docs.PAGES)
    assert docs.missing(ROOT) == []


def test_readme_is_a_short_entry_with_a_table_of_contents():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES, \
        f'README.md has {len(text.splitlines())} lines (at most {README_MAX_LINES}): ' \
        'move depth to doc/'
    m = re.search(r'^## Contents\n(.*?)(?=^## )', text, re.S | re.M)
    assert m, 'README.md has no "## Contents" section'
    toc = re.findall(r'\]\(#([^)]+)\)', m.group(1))
    assert len(toc) >= 5, 'the table of contents lists too few sections'
    headings = anchors(README)
    assert set(toc) <= headings, f'contents entries without a heading: {set(toc) - headings}'
    sections = [slug(h) for h in re.findall(r'^## (.*)$', prose(text), re.M)]
    assert set(sections) - {'contents'} <= set(toc), 'a section is missing from the contents'
    assert 'make demo' in text and 'make test' in text
    assert text.index('make demo') < text.index('## Nodes')


def test_every_relative_link_resolves():
    broken = []
    for path in markdown_files():
        for target in links(path.read_text()):
            if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):  # http:, https:, mailto:
                continue
            file_part, _, fragment = target.partition('#')
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f'{path.relative_to(ROOT)}: {target}'
            if not dest.exists():
                broken.append(f'{where} (no such file)')
            elif fragment and dest.suffix == '.md' and fragment not in anchors(dest):
                broken.append(f'{where} (no such heading in {dest.name})')
    assert not broken, 'broken links:\n' + '\n'.join(broken)
