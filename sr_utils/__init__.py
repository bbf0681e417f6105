"""sr_utils: the shared package of the SR course kit (MATLAB-exact resize, colour, metrics, data, models' helpers).

Submodules are imported on demand (``from sr_utils.imresize import imresize``); importing ``sr_utils`` itself
loads nothing heavy.
"""
__version__ = "0.1.0"
