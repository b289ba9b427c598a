"""Tests of nn_one_node.learning.weights_file: format, bit-exact round trip, atomic save, corrupt
files."""

import hashlib
import os
import stat

import numpy as np
import pytest
import yaml
from hypothesis import given, settings, strategies as st

from nn_one_node.learning import weights_file
from nn_one_node.learning.weights_file import (format_float, load_weights_file, parse_weights_file,
                                      remove_stale_temporaries, save_weights_file,
                                      WeightsFileContent, WeightsFileError, WeightsFileUnreadable)

FAST = settings(derandomize=True, deadline=None, max_examples=60)
finite = st.floats(allow_nan=False, allow_infinity=False)

EXAMPLE = """/**:
  ros__parameters:
    num_features: 3
    activation: sigmoid
    weights: [0.5, -1.25, 3.0e-05]
    bias: 0.1
"""


def signed(body: str) -> bytes:
    """``body`` followed by a correct checksum line, as the writer does."""
    return (body + f'# sha256: {hashlib.sha256(body.encode()).hexdigest()}\n').encode()


def same_bits(a, b) -> bool:
    return np.asarray(a, dtype=np.float64).tobytes() == np.asarray(b, dtype=np.float64).tobytes()


# -------------------------------------------------------------------------------- the format
@pytest.mark.parametrize('value,text', [
    (1.0, '1.0'), (0.1, '0.1'), (-2.0, '-2.0'), (1e-05, '1.0e-05'), (3e-05, '3.0e-05'),
    (1e16, '1.0e+16'), (1.5e300, '1.5e+300'), (5e-324, '5.0e-324'), (-0.0, '-0.0'),
    (123456789.0, '123456789.0'), (0.30000000000000004, '0.30000000000000004')])
def test_format_float_always_has_a_decimal_point(value, text):
    assert format_float(value) == text
    assert yaml.safe_load(text) == value and isinstance(yaml.safe_load(text), float)


@FAST
@given(finite)
def test_format_float_round_trips_through_yaml(value):
    text = format_float(value)
    assert '.' in text
    parsed = yaml.safe_load(text)
    assert isinstance(parsed, float) and same_bits(parsed, value)


def test_format_float_refuses_non_finite():
    for value in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError):
            format_float(value)


def test_written_file_is_the_documented_params_yaml(tmp_path):
    path = tmp_path / 'w.yaml'
    save_weights_file(path, [0.5, -1.25, 3e-05], 0.1, 'sigmoid')
    text = path.read_text()
    assert text.startswith('# nn_one_node weights file')
    assert EXAMPLE in text
    body, last = text[:text.rindex('# sha256: ')], text[text.rindex('# sha256: '):]
    assert last == f'# sha256: {hashlib.sha256(body.encode()).hexdigest()}\n'
    params = yaml.safe_load(text)['/**']['ros__parameters']
    assert type(params['num_features']) is int and params['num_features'] == 3
    assert params['activation'] == 'sigmoid'
    assert all(type(v) is float for v in params['weights'])
    assert type(params['bias']) is float


def test_integral_values_are_written_as_floats(tmp_path):
    path = tmp_path / 'w.yaml'
    save_weights_file(path, np.array([1, -2, 0]), 3, 'linear')
    params = yaml.safe_load(path.read_text())['/**']['ros__parameters']
    assert '[1.0, -2.0, 0.0]' in path.read_text() and 'bias: 3.0\n' in path.read_text()
    assert all(type(v) is float for v in params['weights'] + [params['bias']])


# ------------------------------------------------------------------------------ round trip
@FAST
@given(weights=st.lists(finite, min_size=1, max_size=20), bias=finite,
       activation=st.sampled_from(['sigmoid', 'linear']))
def test_round_trip_is_bit_exact(tmp_path_factory, weights, bias, activation):
    path = tmp_path_factory.mktemp('rt') / 'model.yaml'
    save_weights_file(path, weights, bias, activation)
    content = load_weights_file(path, num_features=len(weights))
    assert isinstance(content, WeightsFileContent)
    assert same_bits(content.weights, weights) and same_bits(content.bias, bias)
    assert content.activation == activation and content.num_features == len(weights)
    assert content.weights.dtype == np.float64 and not content.weights.flags.writeable


# ------------------------------------------------------------------------------- atomic save
def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / 'deep' / 'er' / 'model.yaml'  # parents created
    save_weights_file(path, [1.0, 2.0], 0.5, 'sigmoid')
    save_weights_file(path, [3.0, 4.0], -0.5, 'linear')  # replaces
    assert os.listdir(path.parent) == ['model.yaml']
    content = load_weights_file(str(path))
    assert content.weights.tolist() == [3.0, 4.0] and content.activation == 'linear'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o600)
    save_weights_file(path, [5.0, 6.0], 0.0, 'linear')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the replaced file's permissions kept


def test_failed_replace_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / 'model.yaml'
    save_weights_file(path, [1.0], 0.0, 'sigmoid')
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(weights_file.os, 'replace', broken_replace)
    with pytest.raises(OSError):
        save_weights_file(path, [2.0], 0.0, 'sigmoid')
    assert os.listdir(tmp_path) == ['model.yaml'] and path.read_bytes() == before


@pytest.mark.parametrize('weights,bias,activation', [
    ([1.0, np.nan], 0.0, 'sigmoid'), ([np.inf], 0.0, 'sigmoid'), ([1.0], np.nan, 'sigmoid'),
    ([1.0], -np.inf, 'linear'), ([], 0.0, 'sigmoid'), ([[1.0]], 0.0, 'sigmoid'),
    (['a'], 0.0, 'sigmoid'), ([1.0], 'b', 'sigmoid'), ([1.0], 0.0, 'relu')])
def test_save_refuses_an_invalid_model_and_writes_nothing(tmp_path, weights, bias, activation):
    path = tmp_path / 'model.yaml'
    with pytest.raises(ValueError):
        save_weights_file(path, weights, bias, activation)
    assert os.listdir(tmp_path) == []


# -------------------------------------------------------------------------- corrupt files
def test_every_truncation_of_a_real_file_is_refused(tmp_path):
    path = tmp_path / 'model.yaml'
    save_weights_file(path, [0.125, -1.5e-07, 3.0, 42.0], 0.125, 'sigmoid')
    data = path.read_bytes()
    assert load_weights_file(path).num_features == 4
    cut = tmp_path / 'cut.yaml'
    for size in range(len(data)):
        cut.write_bytes(data[:size])
        with pytest.raises(WeightsFileError):
            load_weights_file(cut)
            pytest.fail(f'a file truncated to {size} of {len(data)} bytes was accepted')


def test_every_single_byte_flip_is_refused(tmp_path):
    data = signed(EXAMPLE)
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0x04
        with pytest.raises(WeightsFileError):
            parse_weights_file(bytes(damaged))


@FAST
@given(st.binary(max_size=300), st.booleans())
def test_garbage_raises_weights_file_error_only(garbage, require_checksum):
    with pytest.raises(WeightsFileError):
        parse_weights_file(garbage, require_checksum=require_checksum)


@FAST
@given(st.text(max_size=200))
def test_garbage_text_with_a_valid_checksum_raises_weights_file_error_only(text):
    try:
        content = parse_weights_file(signed(text))
    except WeightsFileError:
        return
    assert isinstance(content, WeightsFileContent)  # only a complete, valid model comes back
    assert content.weights.shape == (content.num_features,)


@pytest.mark.parametrize('body,message', [
    ('', 'mapping'),  # YAML null
    ('/**:\n  ros__parameters: {}\n', 'misses'),
    ('- 1.0\n- 2.0\n', 'mapping'),
    ('a: [1, 2\n', 'YAML'),
    ('a: !!int x\n', 'YAML'),
    ('a: 2001-13-45\n', 'YAML'),
    ('[' * 2000 + '\n', 'YAML'),
    ('predictor:\n  x: 1\n', 'ros__parameters'),
    (EXAMPLE.replace('    bias: 0.1\n', ''), 'bias'),
    (EXAMPLE.replace('    num_features: 3\n', ''), 'num_features'),
    (EXAMPLE.replace('activation: sigmoid', 'activation: relu'), 'activation'),
    (EXAMPLE.replace('activation: sigmoid', 'activation: [sigmoid]'), 'activation'),
    (EXAMPLE.replace('num_features: 3', 'num_features: 3.0'), 'num_features'),
    (EXAMPLE.replace('num_features: 3', 'num_features: true'), 'num_features'),
    (EXAMPLE.replace('num_features: 3', 'num_features: 0'), 'num_features'),
    (EXAMPLE.replace('num_features: 3', 'num_features: 4'), '3 weights'),
    (EXAMPLE.replace('[0.5, -1.25, 3.0e-05]', '[0.5, -1.25]'), '2 weights'),
    (EXAMPLE.replace('[0.5, -1.25, 3.0e-05]', '[0.5, -1.25, 1]'), 'weights'),
    (EXAMPLE.replace('[0.5, -1.25, 3.0e-05]', '[0.5, -1.25, 1e-05]'), 'weights'),  # a string
    (EXAMPLE.replace('[0.5, -1.25, 3.0e-05]', '[0.5, -1.25, true]'), 'weights'),
    (EXAMPLE.replace('[0.5, -1.25, 3.0e-05]', '0.5'), 'weights'),
    (EXAMPLE.replace('[0.5, -1.25, 3.0e-05]', '[0.5, .nan, 1.0]'), 'NaN'),
    (EXAMPLE.replace('[0.5, -1.25, 3.0e-05]', '[0.5, -.inf, 1.0]'), 'NaN'),
    (EXAMPLE.replace('bias: 0.1', 'bias: .nan'), 'NaN'),
    (EXAMPLE.replace('bias: 0.1', 'bias: 1'), 'bias'),
    (EXAMPLE.replace('bias: 0.1', 'bias: "0.1"'), 'bias'),
])
def test_invalid_content_with_a_valid_checksum_is_refused(body, message):
    with pytest.raises(WeightsFileError, match=message):
        parse_weights_file(signed(body))


def test_checksum_line_problems():
    data = signed(EXAMPLE)
    assert parse_weights_file(data).weights.tolist() == [0.5, -1.25, 3e-05]
    variants = {
        'missing': EXAMPLE.encode(),
        'not last': data + b'bias: 2.0\n',
        'no final newline': data[:-1],
        'upper-case hex': data[:-65] + data[-65:].upper(),
        'wrong hash': data.replace(b'bias: 0.1', b'bias: 0.2'),
        'crlf': data.replace(b'\n', b'\r\n'),
        'not utf-8': b'\xff\xfe' + data,
        'empty': b'',
        'blank': b' \n\n',
    }
    for name, variant in variants.items():
        with pytest.raises(WeightsFileError):
            parse_weights_file(variant)
            pytest.fail(f'{name} accepted')


def test_num_features_argument_must_match(tmp_path):
    path = tmp_path / 'model.yaml'
    save_weights_file(path, [1.0, 2.0, 3.0], 0.0, 'sigmoid')
    assert load_weights_file(path, num_features=3).num_features == 3
    with pytest.raises(WeightsFileError, match='3 features, 4 expected'):
        load_weights_file(path, num_features=4)


def test_missing_unreadable_and_empty_files(tmp_path):
    with pytest.raises(WeightsFileError, match='does not exist') as missing:
        load_weights_file(tmp_path / 'nope.yaml')
    # not a regular file: the configuration's fault, told apart so that nobody moves it aside
    with pytest.raises(WeightsFileUnreadable, match='is not a regular file'):
        load_weights_file(tmp_path)  # a directory
    os.mkfifo(tmp_path / 'fifo')
    with pytest.raises(WeightsFileUnreadable, match='is not a regular file'):
        load_weights_file(tmp_path / 'fifo')  # opening it would wait for a writer
    (tmp_path / 'empty.yaml').write_bytes(b'')
    with pytest.raises(WeightsFileError, match='empty.yaml: is empty') as empty:
        load_weights_file(tmp_path / 'empty.yaml')
    assert not isinstance(missing.value, WeightsFileUnreadable)
    assert not isinstance(empty.value, WeightsFileUnreadable)


def test_a_trainer_written_file_cut_before_its_checksum_is_refused_even_without_one(tmp_path):
    # Inference only accepts a hand-written file with no checksum line; one the trainer wrote
    # had that line, so without it the file was cut: here inside the bias, 0.125 read as 0.12.
    path = tmp_path / 'weights.yaml'
    save_weights_file(path, [1.0, 2.0], 0.125, 'sigmoid')
    text = path.read_text()
    path.write_text(text[:text.index('bias: 0.12') + len('bias: 0.12')] + '\n')
    for require in (True, False):
        with pytest.raises(WeightsFileError, match='written by the trainer .* truncated'):
            load_weights_file(path, require_checksum=require)


def test_a_file_that_cannot_be_opened_is_unreadable_not_malformed(tmp_path, monkeypatch):
    path = tmp_path / 'weights.yaml'
    save_weights_file(path, [1.0, 2.0], 0.0, 'sigmoid')
    if os.geteuid() == 0:  # root opens a mode-000 file: make open() answer as it would for others
        def denied(name, *args, **kwargs):
            raise PermissionError(13, 'Permission denied', name)
        monkeypatch.setattr(weights_file, 'open', denied, raising=False)
    else:
        path.chmod(0)
    with pytest.raises(WeightsFileUnreadable, match='cannot be read: Permission denied'):
        load_weights_file(path)


def test_hand_written_params_files_without_checksum(tmp_path):
    path = tmp_path / 'predictor.yaml'
    path.write_text(EXAMPLE.replace('/**', 'predictor').replace(
        '    bias: 0.1\n', '    bias: 0.1\n    diagnostics_period: 2.0\n'))
    with pytest.raises(WeightsFileError, match='sha256'):
        load_weights_file(path)
    content = load_weights_file(path, require_checksum=False)
    assert content.weights.tolist() == [0.5, -1.25, 3e-05] and content.bias == 0.1
    # a checksum line that is there is still checked
    path.write_bytes(signed(EXAMPLE).replace(b'bias: 0.1', b'bias: 0.3'))
    with pytest.raises(WeightsFileError, match='checksum'):
        load_weights_file(path, require_checksum=False)
    # several nodes and no '/**': ambiguous
    two = EXAMPLE.replace('/**', 'predictor') + EXAMPLE.replace('/**', 'trainer')
    with pytest.raises(WeightsFileError, match='several nodes'):
        parse_weights_file(two.encode(), require_checksum=False)
    # several nodes with '/**' among them: '/**' holds the model
    assert parse_weights_file((two + EXAMPLE).encode(), require_checksum=False).bias == 0.1


def test_remove_stale_temporaries_removes_only_this_files_temporaries(tmp_path):
    path = tmp_path / 'weights.yaml'
    save_weights_file(path, [1.0, 2.0], 0.5, 'sigmoid')
    mine = [tmp_path / '.weights.yaml.ab12cd.tmp', tmp_path / '.weights.yaml.x.tmp']
    others = [tmp_path / '.other.yaml.ab12cd.tmp', tmp_path / 'weights.yaml.tmp',
              tmp_path / '.weights.yaml.ab12cd']
    for f in mine + others:
        f.write_text('partial')
    removed = remove_stale_temporaries(path)
    assert sorted(removed) == sorted(f.name for f in mine)
    assert all(not f.exists() for f in mine) and all(f.exists() for f in others)
    assert load_weights_file(path, num_features=2).bias == 0.5  # the file itself untouched
    assert remove_stale_temporaries(tmp_path / 'missing-dir' / 'w.yaml') == []
