"""tools/benchmark_segmentors.py: the stock config and a leaf side by side, each in a fresh process."""
import importlib.util
import json
import os

import pytest

from mmjafar.models.upsamplers import CARAFE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_cost_table_of_stock_and_carafe_segformer(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('benchmark_segmentors',
                                                  os.path.join(REPO, 'tools', 'benchmark_segmentors.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    main = tool.main
    leaf = os.path.join(REPO, 'configs/mmseg/segformer_mit-b1_carafe_8xb2-160k_ade20k-512x512.py')
    out = tmp_path / 'cost.json'
    main(['mmseg::segformer/segformer_mit-b1_8xb2-160k_ade20k-512x512.py', leaf, '--size', '64', '--repeats', '1',
          '--json', str(out)])
    table = capsys.readouterr().out
    assert '| segformer_mit-b1_carafe_8xb2-160k_ade20k-512x512 |' in table
    stock, carafe = json.loads(out.read_text())
    # the added parameters are exactly the three CARAFE modules the neck builds (x2, x4, x8: 1, 2, 3 stages)
    added = sum(p.numel() for ch, n in ((128, 1), (320, 2), (512, 3)) for p in CARAFE(ch, num_stages=n).parameters())
    assert carafe['params'] - stock['params'] == added
    assert carafe['gmacs'] > stock['gmacs'] > 0.05  # MiT-B1 + head at 64x64: about 0.25 GMACs
    for r in (stock, carafe):
        assert r['time_s'] > 0 and r['peak_mb'] > 1
