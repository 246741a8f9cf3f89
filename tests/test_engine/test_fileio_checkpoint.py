import io
import os

import numpy as np
import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.logging import HistoryBuffer

from mmjafar.engine import AtomicLocalBackend, atomic_write_bytes, runner_checkpoint_loading


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / 'sub' / 'ckpt.pth'
    atomic_write_bytes(b'old', path)
    assert path.read_bytes() == b'old'
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode

    def crash(src, dst):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(OSError, match='disk full'):
        atomic_write_bytes(b'new', path)
    assert path.read_bytes() == b'old'
    assert os.listdir(path.parent) == ['ckpt.pth']  # no temporary file left behind


def test_backend_is_selectable_by_name(tmp_path):
    backend = get_file_backend(str(tmp_path), backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'abc', tmp_path / 'x.bin')
    backend.put_text('hé', tmp_path / 'x.txt')
    assert (tmp_path / 'x.bin').read_bytes() == b'abc' and (tmp_path / 'x.txt').read_text('utf-8') == 'hé'


def test_runner_checkpoints_load_under_weights_only(tmp_path):
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(message_hub=dict(log_scalars={'train/loss': buf}), arr=np.arange(3), w=torch.ones(2)), path)
    with pytest.raises(Exception, match='weights_only|Weights only'):
        torch.load(path)
    with runner_checkpoint_loading():
        ckpt = torch.load(path)
    assert float(ckpt['message_hub']['log_scalars']['train/loss'].current()) == 0.5
    assert ckpt['arr'].tolist() == [0, 1, 2]
    with pytest.raises(Exception):  # the allowance ends with the block
        torch.load(io.BytesIO(path.read_bytes()))


def test_one_cycle_scheduler_state_loads_under_weights_only(tmp_path):
    from mmengine.optim import OneCycleLR
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = OneCycleLR(optimizer, eta_max=0.1, total_steps=10, anneal_strategy='linear')
    path = tmp_path / 'epoch_1.pth'
    torch.save(dict(param_schedulers=[scheduler.state_dict()]), path)
    with pytest.raises(Exception, match='weights_only|Weights only'):
        torch.load(path)
    with runner_checkpoint_loading():
        state = torch.load(path)['param_schedulers'][0]
    assert state['total_steps'] == 10 and callable(state['anneal_func'])


def test_export_from_runner_checkpoint(tmp_path):
    buf = HistoryBuffer()
    buf.update(np.float64(1.0))
    w = torch.randn(3, 2)
    path = tmp_path / 'iter_7.pth'
    torch.save(dict(state_dict={'upsampler.a.weight': w, 'step': torch.tensor(7)},
                    message_hub=dict(log_scalars={'train/loss': buf})), path)
    out = tmp_path / 'jafar.pth'
    from mmjafar.engine import export_upsampler_from_checkpoint
    export_upsampler_from_checkpoint(str(path), str(out))
    exported = torch.load(out, weights_only=True)
    assert list(exported) == ['a.weight'] and torch.equal(exported['a.weight'], w)
    with pytest.raises(ValueError, match='no keys starting with'):
        export_upsampler_from_checkpoint(str(path), str(out), prefix='model.')
