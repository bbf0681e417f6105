"""Message catalogues of the MOS study (:mod:`course.mos.i18n`): one module per language, ``zh_CN.py`` for ``zh-CN``."""
