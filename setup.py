from setuptools import find_packages, setup


def read_requirements(path):
    with open(path) as f:
        return [ln.split('#')[0].strip() for ln in f if ln.split('#')[0].strip()]


setup(
    name='mmjafar',
    version='0.1.0',
    description='JAFAR and other feature upsamplers for OpenMMLab (mmsegmentation, BEV segmentation)',
    packages=find_packages(include=['mmjafar', 'mmjafar.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require={
        'mm': read_requirements('requirements/mm.txt'),
        'tests': read_requirements('requirements/tests.txt'),
    },
)
