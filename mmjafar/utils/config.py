"""``mmjafar::<path>`` config names: inheriting and loading the configs shipped inside the package.

mmengine resolves ``_base_ = ['mmseg::...']`` through its table of OpenMMLab packages and the package's
``.mim/configs`` folder. :func:`register_config_package` (run by ``import mmjafar``) makes ``mmjafar::`` work the
same way, in three narrow steps that leave every other name untouched:

* ``mmjafar`` joins mmengine's package table (``MODULE2PACKAGE``), so ``_base_ = ['mmjafar::pretrain/...']``
  is accepted;
* the folder of ``mmjafar`` is the imported package's own folder; mmengine would ask ``pkg_resources``, which
  for an editable install points at ``site-packages`` where no ``mmjafar`` folder exists;
* ``Config.fromfile('mmjafar::pretrain/jafar_demo.py')`` (and ``mmseg::...``) is accepted: mmengine 0.10 takes
  package names only inside ``_base_``; a name that is not an existing file is resolved as ``_base_`` would.

Example:
    >>> import mmjafar
    >>> from mmengine.config import Config
    >>> Config.fromfile('mmjafar::pretrain/jafar_demo.py').model.type
    'UpsamplerPretrainer'
"""
import functools
import os.path as osp

from mmengine.config import Config
from mmengine.config import config as _config_module
from mmengine.config import utils as _config_utils

PACKAGE = 'mmjafar'


def config_root() -> str:
    """The folder of the configs shipped with the imported package (``mmjafar/.mim/configs``)."""
    return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs')


def resolve_config(name: str) -> str:
    """``'mmjafar::pretrain/jafar_demo.py'`` (or any ``pkg::path`` mmengine knows) -> absolute file path."""
    package, relative = _config_utils._get_package_and_cfg_path(name)
    root = osp.join(_config_module.get_installed_path(package), '.mim', 'configs')
    path = osp.join(root, relative)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {name!r} not found: no file {relative} in {root}, where {package} ships '
                                'its configs')
    return path


def register_config_package() -> None:
    """Make ``mmjafar::`` config names work in ``_base_`` and ``Config.fromfile`` (idempotent)."""
    _config_utils.MODULE2PACKAGE.setdefault(PACKAGE, PACKAGE)
    lookup = _config_module.get_installed_path
    if not getattr(lookup, '_mmjafar', False):

        @functools.wraps(lookup)
        def get_installed_path(package: str) -> str:
            if package == PACKAGE:
                return osp.dirname(osp.dirname(osp.abspath(__file__)))
            return lookup(package)

        get_installed_path._mmjafar = True
        _config_module.get_installed_path = get_installed_path
    fromfile = Config.__dict__['fromfile'].__func__
    if not getattr(fromfile, '_mmjafar', False):

        @functools.wraps(fromfile)
        def fromfile_with_packages(filename, *args, **kwargs):
            if isinstance(filename, str) and '::' in filename and not osp.exists(filename):
                filename = resolve_config(filename)
            return fromfile(filename, *args, **kwargs)

        fromfile_with_packages._mmjafar = True
        Config.fromfile = staticmethod(fromfile_with_packages)
