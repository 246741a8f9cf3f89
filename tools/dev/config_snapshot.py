"""Dump or compare the resolved form of every config file (a check for config refactors).

    .venv/bin/python tools/dev/config_snapshot.py dump /tmp/cfg_before     # before the edit
    .venv/bin/python tools/dev/config_snapshot.py compare /tmp/cfg_before  # after: what changed

Every ``*.py`` file under ``configs/`` and ``projects/bev/configs/`` is resolved with
``Config.fromfile(...).to_dict()`` and pickled, so tuples and lists stay apart and dict key order is not compared;
``_base_`` files too, as some tests load them directly (``--leaves``: compare only the runnable configs).
``custom_imports`` are not imported (the resolved dict does not depend on them). ``--ignore KEY`` (repeatable)
skips top-level keys that are only intermediate variables of the config files.
"""
import argparse
import glob
import os
import os.path as osp
import pickle
import re

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ROOTS = ('configs', osp.join('projects', 'bev', 'configs'))


def is_base(rel):
    return '_base_' in rel.split(os.sep)


def config_files():
    """Repository-relative paths of every config file."""
    return sorted(osp.relpath(path, REPO) for root in ROOTS
                  for path in glob.glob(osp.join(REPO, root, '**', '*.py'), recursive=True))


def resolve(rel):
    return Config.fromfile(osp.join(REPO, rel), import_custom_modules=False).to_dict()


def differences(before, after, prefix=''):
    """Dotted paths where the two resolved values differ (types count: a tuple is not a list)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            path = f'{prefix}.{key}' if prefix else str(key)
            if key not in after:
                out.append(f'{path}: removed')
            elif key not in before:
                out.append(f'{path}: added = {after[key]!r}')
            else:
                out += differences(before[key], after[key], path)
        return out
    if (isinstance(before, (list, tuple)) and type(before) is type(after) and len(before) == len(after)):
        return [d for i, (b, a) in enumerate(zip(before, after)) for d in differences(b, a, f'{prefix}[{i}]')]
    if type(before) is not type(after) or before != after:
        return [f'{prefix}: {before!r} -> {after!r}']
    return []


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('action', choices=('dump', 'compare'))
    parser.add_argument('folder', help='where the dump is written (dump) or read (compare)')
    parser.add_argument('--leaves', action='store_true', help='compare only the configs outside _base_ folders')
    parser.add_argument('--ignore', action='append', default=[], metavar='KEY',
                        help='top-level key left out of the comparison (an intermediate variable)')
    args = parser.parse_args()
    if args.action == 'dump':
        os.makedirs(args.folder, exist_ok=True)
        with open(osp.join(args.folder, 'configs.pkl'), 'wb') as f:
            pickle.dump({rel: resolve(rel) for rel in config_files()}, f)
        print(f'{len(config_files())} configs dumped to {args.folder}')
        return
    with open(osp.join(args.folder, 'configs.pkl'), 'rb') as f:
        before = pickle.load(f)
    now = config_files()
    changed = 0
    for rel in sorted(set(before) | set(now)):
        if args.leaves and is_base(rel):
            continue
        if rel not in now or rel not in before:
            print(f'{rel}: {"gone" if rel not in now else "new"}')
            changed += 1
            continue
        after = resolve(rel)
        diff = [d for d in differences(before[rel], after) if re.match(r'\w+', d).group() not in args.ignore]
        if diff:
            changed += 1
            print(rel)
            print('\n'.join(f'    {d}' for d in diff))
    print(f'{sum(not (args.leaves and is_base(r)) for r in now)} configs compared, {changed} differ')


if __name__ == '__main__':
    main()
