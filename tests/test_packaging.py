"""mmjafar as a package: configs shipped as ``mmjafar/.mim/configs``, ``mmjafar::`` names, a complete wheel."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest
from mmengine.config import Config

import mmjafar
from mmjafar.utils import config_root, resolve_config

REPO = Path(__file__).resolve().parents[1]

USER_CONFIG = textwrap.dedent("""\
    _base_ = ['mmjafar::pretrain/jafar_demo.py']
    train_cfg = dict(max_iters=7)
    """)

# run inside the installed environment: every module imports, mmjafar:: names resolve to the installed copy
CHECK = textwrap.dedent("""\
    import importlib, json, os, pkgutil, sys
    import mmjafar
    from mmengine.config import Config
    names = sorted(m.name for m in pkgutil.walk_packages(mmjafar.__path__, 'mmjafar.'))
    for name in names:
        importlib.import_module(name)
    demo = Config.fromfile('mmjafar::pretrain/jafar_demo.py')
    user = Config.fromfile(sys.argv[1])
    root = os.path.join(os.path.dirname(mmjafar.__file__), '.mim', 'configs')
    files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
                   if '__pycache__' not in d)
    print(json.dumps(dict(file=mmjafar.__file__, modules=names, demo=demo.filename, demo_iters=demo.max_iters,
                          user_iters=user.train_cfg.max_iters, user_model=user.model.type, configs=files)))
    """)


def repo_config_files():
    root = REPO / 'configs'
    return sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.is_file() and '__pycache__' not in p.parts
                  and p.suffix != '.pyc')


def test_configs_are_shipped_in_the_source_tree():
    """Editable installs and PYTHONPATH use the package folder itself: .mim/configs is the repository's configs."""
    assert osp.samefile(config_root(), REPO / 'configs')
    assert osp.isfile(osp.join(osp.dirname(mmjafar.__file__), '.mim', 'model-index.yml'))
    assert resolve_config('mmjafar::pretrain/jafar_demo.py') == osp.join(config_root(), 'pretrain', 'jafar_demo.py')


def test_mmjafar_config_names(tmp_path):
    demo = Config.fromfile('mmjafar::pretrain/jafar_demo.py')
    assert demo.model.type == 'UpsamplerPretrainer' and demo.max_iters == 100
    (tmp_path / 'user.py').write_text(USER_CONFIG)
    user = Config.fromfile(str(tmp_path / 'user.py'))
    assert user.train_cfg.max_iters == 7 and user.model.type == 'UpsamplerPretrainer'
    assert user.img_size == demo.img_size
    with pytest.raises(FileNotFoundError, match='no file pretrain/missing.py in'):
        Config.fromfile('mmjafar::pretrain/missing.py')
    # other names keep mmengine's behaviour
    with pytest.raises(FileNotFoundError):
        Config.fromfile(str(tmp_path / 'absent.py'))


def _copy_source(dest: Path) -> None:
    """What a clean checkout holds for the build (no .venv, work dirs or build leftovers)."""
    for name in ('setup.py', 'MANIFEST.in', 'README.md'):
        shutil.copy2(REPO / name, dest / name)
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info')
    for name in ('requirements', 'configs', 'mmjafar'):
        shutil.copytree(REPO / name, dest / name, symlinks=True, ignore=ignore)


@pytest.mark.slow
def test_wheel_installs_into_a_clean_environment(tmp_path):
    """``pip install .`` (not editable) into a new virtual environment: every module of the package imports and
    the configs inside the wheel serve ``Config.fromfile('mmjafar::...')`` and ``_base_ = ['mmjafar::...']``."""
    src, wheels, env = tmp_path / 'src', tmp_path / 'wheels', tmp_path / 'env'
    src.mkdir()
    _copy_source(src)
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check']
    subprocess.run(pip + ['wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(wheels), str(src)],
                   check=True, cwd=tmp_path)
    wheel, = wheels.glob('mmjafar-*.whl')
    shipped = sorted(n[len('mmjafar/.mim/configs/'):] for n in zipfile.ZipFile(wheel).namelist()
                     if n.startswith('mmjafar/.mim/configs/'))
    assert shipped == repo_config_files()  # the whole tree, whatever folders it has

    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env)], check=True)
    env_python = env / 'bin' / 'python'
    env_site = subprocess.run([str(env_python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                              check=True, capture_output=True, text=True).stdout.strip()
    # the dependencies (torch, mmengine, mmseg, ...) come from this environment's site-packages, appended after the
    # new one; its .pth files (an editable mmjafar among them) are not processed for an appended folder
    Path(env_site, 'deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    subprocess.run(pip + ['--python', str(env_python), 'install', '--no-deps', '-q', str(wheel)], check=True)

    (tmp_path / 'user.py').write_text(USER_CONFIG)
    clean_env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    run = subprocess.run([str(env_python), '-c', CHECK, str(tmp_path / 'user.py')], cwd=tmp_path, env=clean_env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result['file'].startswith(env_site), result['file']  # the installed copy, not the checkout
    packages = set(result['modules'])
    expected = {'mmjafar.' + str(p.parent.relative_to(REPO / 'mmjafar')).replace(os.sep, '.')
                for p in (REPO / 'mmjafar').rglob('__init__.py') if p.parent != REPO / 'mmjafar'}
    assert expected <= packages, expected - packages  # every subpackage is in the wheel and imports
    assert 'mmjafar.utils.benchmark' in packages and 'mmjafar.models.upsamplers.builder' in packages
    assert result['demo'].startswith(env_site) and result['demo_iters'] == 100
    assert result['user_iters'] == 7 and result['user_model'] == 'UpsamplerPretrainer'
    assert sorted(result['configs']) == repo_config_files()
