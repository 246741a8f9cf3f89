"""tools/cli_args.py (the arguments shared by the tools) and the Runner tools' --help."""
import importlib.util
import os
import subprocess
import sys

import pytest

from ..test_engine.pretrain_utils import BASE_CONFIG, REPO


def _cli_args():
    spec = importlib.util.spec_from_file_location('cli_args', os.path.join(REPO, 'tools', 'cli_args.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_arguments_reach_the_config(tmp_path):
    tool = _cli_args()
    parser = tool.runner_parser('x')
    tool.add_train_arguments(parser, auto_amp=True)
    args = tool.parse_runner_args(parser, [BASE_CONFIG, '--work-dir', str(tmp_path), '--resume', '--no-amp',
                                           '--cfg-options', 'train_dataloader.dataset.data_root=/imgs',
                                           'model.consistency_weight=0.1'])
    cfg = tool.runner_cfg(args)
    assert cfg.work_dir == str(tmp_path) and cfg.resume is True and cfg.load_from is None
    assert cfg.train_dataloader.dataset.data_root == '/imgs' and cfg.model.consistency_weight == 0.1
    assert cfg.launcher == 'none' and cfg.optim_wrapper.type == 'OptimWrapper'
    for auto_amp, default in ((True, None), (False, False)):  # None: bfloat16 whenever CUDA is available
        parser = tool.runner_parser('x')
        tool.add_train_arguments(parser, auto_amp)
        assert parser.parse_args([BASE_CONFIG]).amp is default and parser.parse_args([BASE_CONFIG, '--amp']).amp


def test_packaged_config_names_and_default_work_dir():
    tool = _cli_args()
    args = tool.parse_runner_args(tool.runner_parser('x'), ['mmjafar::pretrain/jafar_demo.py'])
    cfg = tool.runner_cfg(args)
    assert cfg.model.type == 'UpsamplerPretrainer' and cfg.work_dir == os.path.join('./work_dirs', 'jafar_demo')
    assert not cfg.get('resume', False)


@pytest.mark.parametrize('tool, words', [('train.py', ['--resume', '--amp', '--cfg-options']),
                                         ('test.py', ['checkpoint', '--show-dir', '--out']),
                                         ('pretrain_jafar.py', ['--resume', '--no-amp', '--launcher'])])
def test_help(tool, words):
    """Each tool runs as ``python tools/<tool>`` (its sibling cli_args.py found without path changes)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, os.path.join('tools', tool), '--help'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(w in proc.stdout for w in words), proc.stdout
    assert 'python tools/' in proc.stdout  # the usage examples of the docstring
