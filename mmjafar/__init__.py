"""mmjafar: JAFAR and other feature upsamplers for OpenMMLab."""
__version__ = "0.1.0"
