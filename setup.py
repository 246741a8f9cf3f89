"""mmjafar's package: the ``mmjafar`` Python package plus the repository's ``configs/`` tree.

The configs ship inside the package as ``mmjafar/.mim/configs`` (the place mmengine looks for a package's configs
when a config names them as ``mmjafar::<path>``):

* in the source tree (editable installs, ``PYTHONPATH``) that folder is a symbolic link to ``../../configs``;
* in a built wheel ``build_py`` copies the whole ``configs/`` tree there (every folder, present or future).
"""
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def read_requirements(path):
    with open(os.path.join(HERE, path)) as f:
        return [ln.split('#')[0].strip() for ln in f if ln.split('#')[0].strip()]


class BuildPyWithConfigs(build_py):
    """``build_py`` that also places a real copy of ``configs/`` at ``mmjafar/.mim/configs`` in the build."""

    def run(self):
        super().run()
        source = os.path.join(HERE, 'configs')
        if not os.path.isdir(source):
            raise FileNotFoundError(f'{source} is missing: build the package from a complete checkout or sdist')
        target = os.path.join(self.build_lib, 'mmjafar', '.mim', 'configs')
        if os.path.islink(target) or os.path.isfile(target):
            os.remove(target)
        elif os.path.isdir(target):
            shutil.rmtree(target)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


setup(
    name='mmjafar',
    version='0.1.0',
    description='JAFAR and other feature upsamplers for OpenMMLab (mmsegmentation, BEV segmentation)',
    packages=find_packages(include=['mmjafar', 'mmjafar.*']),
    package_data={'mmjafar': ['.mim/model-index.yml']},
    cmdclass={'build_py': BuildPyWithConfigs},
    zip_safe=False,
    python_requires='>=3.9',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require={
        'mm': read_requirements('requirements/mm.txt'),
        'tests': read_requirements('requirements/tests.txt'),
    },
)
