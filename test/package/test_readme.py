"""The README stays true to the code: its parameter tables are the nodes' own tables."""

from pathlib import Path

from nn_one_node.tools import docs

README = Path(__file__).resolve().parents[2] / 'README.md'


def test_parameter_tables_match_the_code():
    text = README.read_text()
    assert docs.render(text) == text, 'run: python -m nn_one_node.tools.docs README.md'
    for node in docs.node_tables():
        assert f'<!-- params:{node} -->' in text, f'README has no parameter table for {node}'


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    assert 'make demo' in text and 'make test' in text
    assert text.index('make demo') < text.index('## The predictor')
